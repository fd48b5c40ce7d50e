"""WSGI entry point: `flask --app wsgi ...` and production servers load `app` from here."""

from jeg_contacts import create_app

app = create_app()
