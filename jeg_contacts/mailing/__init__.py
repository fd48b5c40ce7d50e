"""Announcements: compose, target an audience, and deliver through a durable queue."""
