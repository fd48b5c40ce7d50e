"""Secretariat accounts, roles, login and the access rule for everything under /admin."""
