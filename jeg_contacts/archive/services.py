"""Published announcements as the public reads them: in their language where one exists,
and without anybody's personal details."""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from jeg_contacts.extensions import db, utcnow
from jeg_contacts.mailer.messages import external_url
from jeg_contacts.mailing.models import Announcement, AnnouncementKind
from jeg_contacts.mailing.rendering import markdown_to_html, personalise

KIND_LABELS = {
    AnnouncementKind.ACTIVITY: _l("Activity"),
    AnnouncementKind.GUIDANCE: _l("New guidance"),
    AnnouncementKind.GENERAL: _l("General news"),
}
PER_PAGE = 20
FEED_ENTRIES = 50
ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# A family name placeholder disappears with the space before it ("Dear colleague,").
_FAMILY_NAME = re.compile(r"[ \t]*\{\{\s*family_name\s*\}\}")


def _published() -> sa.Select:
    sent_on = sa.func.coalesce(Announcement.finished_at, Announcement.started_at)
    return (
        sa.select(Announcement)
        .where(Announcement.published.is_(True))
        .order_by(sent_on.desc(), Announcement.id.desc())
    )


def published_page(page: int) -> Any:
    """One page of published announcements, newest first."""
    return db.paginate(_published(), page=page, per_page=PER_PAGE, error_out=False)


def published_announcement(announcement_id: int) -> Announcement | None:
    announcement = db.session.get(Announcement, announcement_id)
    return announcement if announcement is not None and announcement.published else None


def sent_on(announcement: Announcement) -> datetime:
    return announcement.finished_at or announcement.started_at or announcement.created_at


@dataclass(frozen=True)
class PublicVersion:
    """An announcement in one language, as the archive shows it."""

    language: str
    subject: str
    html: Markup

    def is_fallback_for(self, language: str) -> bool:
        return self.language != language


def neutral_text(source: str, language: str) -> str:
    """The Markdown with the personal placeholders replaced by neutral words in `language`."""
    with force_locale(language):
        values = {"given_name": _("colleague"), "organisation": _("your organisation")}
    return personalise(_FAMILY_NAME.sub("", source), values, html=False)


def public_version(announcement: Announcement, language: str) -> PublicVersion:
    """The version in `language` if there is one, else the English one."""
    language = language if announcement.has_language(language) else "en"
    body = neutral_text(announcement.body(language), language)
    return PublicVersion(
        language=language,
        subject=announcement.subject(language),
        html=Markup(markdown_to_html(body)),
    )


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _link(parent: ET.Element, href: str, rel: str, media_type: str, **extra: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "type": media_type, "href": href, **extra})


def atom_feed(language: str) -> bytes:
    """The latest published announcements as an Atom 1.0 feed, in `language` where a
    version exists (each entry says which language it is in)."""
    announcements = db.session.scalars(_published().limit(FEED_ENTRIES)).all()
    feed_url = external_url("archive.feed", lang=language)
    feed = ET.Element("feed", {"xmlns": ATOM, XML_LANG: language})
    _text(feed, "id", feed_url)
    _text(
        feed,
        "title",
        _("Announcements of the Joint Expert Group on Water and Industrial Accidents"),
    )
    _text(
        feed,
        "subtitle",
        _("News about activities and new guidance, as sent to subscribers."),
    )
    newest = max((sent_on(a) for a in announcements), default=None) or utcnow()
    _text(feed, "updated", newest.isoformat(timespec="seconds"))
    _link(feed, feed_url, "self", "application/atom+xml")
    _link(feed, external_url("archive.index", lang=language), "alternate", "text/html")
    author = ET.SubElement(feed, "author")
    _text(author, "name", _("JEG secretariat"))
    for announcement in announcements:
        version = public_version(announcement, language)
        url = external_url("archive.detail", announcement_id=announcement.id, lang=language)
        entry = ET.SubElement(feed, "entry", {XML_LANG: version.language})
        _text(entry, "id", url)
        _text(entry, "title", version.subject)
        when = sent_on(announcement).isoformat(timespec="seconds")
        _text(entry, "published", when)
        _text(entry, "updated", when)
        _link(entry, url, "alternate", "text/html", hreflang=version.language)
        ET.SubElement(
            entry,
            "category",
            {"term": announcement.kind.value, "label": str(KIND_LABELS[announcement.kind])},
        )
        _text(entry, "content", str(version.html), type="html")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
