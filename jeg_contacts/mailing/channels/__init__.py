"""Delivery channels: how a prepared message reaches its recipient.

The sender loop (`mailing.sending`) hands each message to a channel and records the verdict;
claims, retries and the crash-safety order stay in the loop, whatever the channel. Email
through the SMTP relay (`mail.MailChannel`) is the one channel today. A second one, a webhook
for example, is a module here with a class that has the two methods of `Channel`, chosen in
`open_channel`."""

from jeg_contacts.mailing.channels.base import Channel, Result, Verdict
from jeg_contacts.mailing.channels.mail import MailChannel

__all__ = ["Channel", "Result", "Verdict", "open_channel"]


def open_channel() -> Channel:
    """The channel of one sender thread (call in an app context)."""
    return MailChannel()
