"""Back office: directory."""
