"""What every channel is: `send` a message to a recipient, answer with a `Verdict`."""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from jeg_contacts.mailer.messages import ReadyMessage
from jeg_contacts.mailing.rendering import Recipient


class Result(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # a temporary failure: try again after a backoff
    FAILED = "failed"  # a permanent failure
    # The channel itself cannot be used (the relay refused our login, TLS failed): nobody's
    # delivery failed; the send is paused until staff resume it.
    PAUSE = "pause"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one message, with the other side's reply (stored with the delivery)."""

    result: Result
    reply: str
    reason: str = ""  # with PAUSE: what failed (a `mailer.session.RelayReason`)


class Channel(Protocol):
    def send(
        self,
        recipient: Recipient,
        message: ReadyMessage,
        *,
        before_handover: Callable[[], None],
        while_in_flight: Callable[[], None],
    ) -> Verdict:
        """Deliver `message` to `recipient`.

        `before_handover` commits the earlier outcomes: call it before the message can reach
        the recipient, never after (that order bounds the duplicates a crash can cause).
        `while_in_flight` builds the next message: call it while waiting for the answer."""
        ...

    def close(self) -> None:
        """Release the connection, if any (the sender thread is ending)."""
        ...
