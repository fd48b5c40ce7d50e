"""Landing page, privacy notice and health check."""
