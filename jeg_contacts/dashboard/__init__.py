"""The back office's front page: who is in the community, at a glance."""
