"""Sends paused because the mail relay itself failed (a refused login, TLS): pausing one,
saying why in plain words, and the list `flask doctor` reports.

A relay problem is nobody's delivery failing: every recipient would fail the same way, and
each new connection would try the login again until the relay locks the account. So the
worker pauses the send at the first one, hands its claimed rows back (no attempt counted)
and waits for staff to resume it."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from jeg_contacts.audit.services import Actor, record
from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer.session import RelayReason
from jeg_contacts.mailing.models import Announcement, AnnouncementStatus

_EXPLANATIONS = {
    RelayReason.LOGIN_REFUSED: _l(
        "The mail relay refused this application's login (user name or password), so "
        "nothing more was sent and no recipient was marked failed. Check SMTP_USERNAME and "
        "SMTP_PASSWORD, or the account at the relay; restart the worker if you change its "
        "settings, then resume."
    ),
    RelayReason.TLS_FAILED: _l(
        "The secure connection to the mail relay failed (its certificate is not trusted, or "
        "TLS could not be set up), so nothing more was sent and no recipient was marked "
        "failed. Check SMTP_SECURITY and SMTP_CA_FILE, or the relay's certificate; restart "
        "the worker if you change its settings, then resume."
    ),
    RelayReason.PLAINTEXT_LOGIN_REFUSED: _l(
        "The relay password would have crossed the network unencrypted, so this application "
        "did not log in: nothing more was sent and no recipient was marked failed. Set "
        "SMTP_SECURITY to starttls or tls, restart the worker, then resume."
    ),
    RelayReason.NO_8BITMIME: _l(
        "The mail relay does not accept 8-bit messages (8BITMIME), which French and Russian "
        "text needs, so nothing more was sent and no recipient was marked failed. Use a relay "
        "that accepts them, then resume."
    ),
}


def explain(reason: str) -> str:
    """What a relay problem means for staff, and what to do, in plain words."""
    try:
        return str(_EXPLANATIONS[RelayReason(reason)])
    except ValueError:
        return str(_l("The mail relay could not be used, so the send was paused."))


def pause_for_relay_problem(announcement_id: int, reason: str, detail: str) -> bool:
    """Pause the announcement if it is being sent, noting the relay problem and audited as
    done by the system; whether it was paused now (added to the session, not committed)."""
    paused = db.session.execute(
        sa.update(Announcement)
        .where(
            Announcement.id == announcement_id,
            Announcement.status == AnnouncementStatus.SENDING,
        )
        .values(
            status=AnnouncementStatus.PAUSED,
            paused_reason=reason,
            paused_detail=detail[:500],
            paused_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if paused:
        record(
            "announcement.paused",
            "announcement",
            announcement_id,
            f"Paused by the delivery worker: mail relay problem ({reason}): {detail}"[:500],
            {"reason": reason},
            actor=Actor(None, "system"),
        )
    return bool(paused)


@dataclass(frozen=True, slots=True)
class RelayPause:
    """A send paused for a relay problem."""

    announcement_id: int
    subject: str
    reason: str  # a RelayReason value
    explanation: str  # `explain(reason)`, in the language asked for
    detail: str  # the relay's reply, or the TLS error
    since: datetime


def sends_paused_by_relay(language: str = "en") -> list[RelayPause]:
    """The sends paused now because of a relay problem, oldest first, explained in
    `language` (for `flask doctor`; works without a request)."""
    announcements = db.session.scalars(
        sa.select(Announcement)
        .where(
            Announcement.status == AnnouncementStatus.PAUSED,
            Announcement.paused_reason.is_not(None),
        )
        .order_by(Announcement.paused_at, Announcement.id)
    )
    with force_locale(language):
        return [
            RelayPause(
                announcement_id=announcement.id,
                subject=announcement.subject_en,
                reason=announcement.paused_reason or "",
                explanation=explain(announcement.paused_reason or ""),
                detail=announcement.paused_detail or "",
                since=announcement.paused_at or utcnow(),
            )
            for announcement in announcements
        ]
