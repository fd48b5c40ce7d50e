"""Public self-service: sign up, confirm, manage preferences, unsubscribe, erase."""
