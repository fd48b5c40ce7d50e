"""Languages of the public pages and emails, and how a request's language is chosen."""

from flask import g, has_request_context, request, session
from flask_babel import refresh

LANGUAGES = ("en", "fr", "ru")
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "ru": "Русский"}
# The back office is in English: how it names each language.
LANGUAGE_NAMES_IN_ENGLISH = {"en": "English", "fr": "French", "ru": "Russian"}


def remember_requested_language() -> None:
    """Keep a `?lang=` choice for the rest of the visit (before_request hook)."""
    requested = request.args.get("lang")
    if requested in LANGUAGES and session.get("lang") != requested:
        session["lang"] = requested


def select_locale() -> str:
    """The contact's own choice, else `?lang=` (remembered), else Accept-Language.

    The back office (/admin) is for the secretariat and is in English only, as are commands
    and jobs (no request), which write for staff too."""
    if not has_request_context() or request.path.startswith("/admin"):
        return "en"
    contact_language = g.get("contact_language")
    if contact_language in LANGUAGES:
        return contact_language
    requested = request.args.get("lang") or session.get("lang")
    if requested in LANGUAGES:
        return requested
    return request.accept_languages.best_match(LANGUAGES) or "en"


def use_contact_language(language: str) -> None:
    """Serve the rest of the request in a contact's own language: pages about a known contact
    speak it, whatever the browser asks for."""
    g.contact_language = language
    refresh()
