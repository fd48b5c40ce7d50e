"""Email through the configured SMTP relay, or into the Maildir outbox without one."""

import smtplib
from collections.abc import Callable

from jeg_contacts.mailer.messages import ReadyMessage
from jeg_contacts.mailer.session import RelayProblem
from jeg_contacts.mailer.transports import open_session
from jeg_contacts.mailing.channels.base import Result, Verdict
from jeg_contacts.mailing.rendering import Recipient


class MailChannel:
    """One reused SMTP session (mailer's, as transactional mail uses), its errors turned
    into verdicts: 4xx and broken connections are retried, other codes are failures, and a
    problem with the relay itself (login, TLS) pauses the send."""

    def __init__(self) -> None:
        self._session = open_session()

    def send(
        self,
        recipient: Recipient,
        message: ReadyMessage,
        *,
        before_handover: Callable[[], None],
        while_in_flight: Callable[[], None],
    ) -> Verdict:
        try:
            reply = self._session.send(
                [recipient.email],
                message,
                before_data=before_handover,
                while_server_reads=while_in_flight,
            )
        except RelayProblem as problem:
            return Verdict(Result.PAUSE, problem.detail, problem.reason)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return _by_code(code, text)
        except smtplib.SMTPResponseException as error:
            return _by_code(error.smtp_code, error.smtp_error)
        except OSError as error:  # smtplib's other errors, a broken connection, a timeout
            return Verdict(Result.RETRY, f"connection problem: {error!r}")
        return Verdict(Result.SENT, reply)

    def close(self) -> None:
        self._session.close()


def _by_code(code: int, reply: bytes | str) -> Verdict:
    text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return Verdict(Result.RETRY if 400 <= code < 500 else Result.FAILED, text)
