"""Building, rendering and delivering email: every feature sends through here."""

from jeg_contacts.mailer.messages import (
    build_message,
    clean_header_text,
    external_url,
    render_email,
)
from jeg_contacts.mailer.transports import deliver, send_after_commit

__all__ = [
    "build_message",
    "clean_header_text",
    "deliver",
    "external_url",
    "render_email",
    "send_after_commit",
]
