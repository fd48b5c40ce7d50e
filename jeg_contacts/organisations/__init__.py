"""Back office: organisations."""
