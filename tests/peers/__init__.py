"""Real servers the app talks to in production, run privately for the tests (Postfix)."""
