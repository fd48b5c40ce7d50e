"""Contact lists out (CSV, XLSX, vCard, JSON Lines) and in (CSV, XLSX imports)."""
