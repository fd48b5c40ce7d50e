"""Audiences: the one contact filter shared by the directory, announcements and exports."""
