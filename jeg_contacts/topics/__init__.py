"""Back office: topics."""
