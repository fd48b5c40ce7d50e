"""Personal-data requests handled by the secretariat: a copy of everything, or erasure.

Both do exactly what the contact could do from their preferences page, and both are audited
under the staff member's name."""

from typing import Any

from jeg_contacts.audit import services as audit
from jeg_contacts.contacts.models import Contact, ContactStatus
from jeg_contacts.contacts.services import contact_data_export, erase_contact
from jeg_contacts.errors import ValidationFailed
from jeg_contacts.extensions import db


def data_for_request(contact: Contact) -> dict[str, Any]:
    """The self-service JSON document for this contact, with the download audited."""
    document = contact_data_export(contact)
    audit.record(
        "contact.data_exported",
        "contact",
        contact.id,
        "Downloaded everything stored about this contact (personal-data request)",
    )
    db.session.flush()
    return document


def erase_on_request(contact: Contact, staff_email: str) -> None:
    """Erase the contact as self-service erasure does, recording who did it on their behalf."""
    if contact.status is ContactStatus.ERASED:
        raise ValidationFailed("", "This contact's data was already erased.")
    erase_contact(contact, f"secretariat ({staff_email}), at the contact's request"[:200])
    # No name or address in the entry: it outlives the data it would otherwise repeat.
    audit.record(
        "contact.erased",
        "contact",
        contact.id,
        "Erased at the contact's request (personal-data request)",
    )
    db.session.flush()
