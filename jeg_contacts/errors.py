"""The few service exceptions that views and commands turn into messages."""


class ValidationFailed(Exception):
    """Input broke a business rule; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InvalidLink(Exception):
    """A signed link was tampered with, revoked, or points at nothing."""


class ExpiredLink(InvalidLink):
    """A signed link was genuine but is too old; `contact_id` allows offering a fresh one."""

    def __init__(self, contact_id: int) -> None:
        super().__init__("link expired")
        self.contact_id = contact_id
