"""Sign-ups waiting for the confirmation of an address that is already on file."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jeg_contacts.extensions import UTCDateTime, db, utcnow


class SignupRequest(db.Model):
    """Details proposed by a sign-up for a pending, unsubscribed or bounced address.

    Nothing about the contact changes until the owner of the address confirms from the link
    mailed for this request; then the proposal is applied and the request deleted. Requests
    hold personal data: erasure deletes them, and they are dropped once their link expires."""

    __tablename__ = "signup_requests"
    # Ids are never given twice (SQLite would otherwise reuse the highest after a delete), so
    # the link of a used or expired request can never apply a later request's details.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    # The sign-up form's fields as checked by contacts.services.check_profile, plus the
    # address as typed and the privacy notice version it was agreed under.
    proposal: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
