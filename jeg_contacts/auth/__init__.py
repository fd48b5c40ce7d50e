"""Secretariat accounts, roles, sessions and the access rule for everything under /admin; the
pages and commands that manage them are in staff."""
