"""Personal-data requests: a copy of everything stored about a contact, and erasure."""
