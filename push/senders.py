"""What every push sender shares: the notification it is given and the outcome it
returns (sent, retry after, gone, failed).

The fan-out (``push.services``) decides who gets a push; a sender per platform
(``push.webpush``, ``push.fcm``, ``push.apns``) decides how, and answers in these
terms only, so adding a platform is adding a sender.
"""

import functools
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

from django.conf import settings
from requests.certs import where as default_ca_bundle


class Result(StrEnum):
    SENT = "sent"  # the service accepted the push
    RETRY = "retry"  # try again later (429, 5xx, no answer)
    GONE = "gone"  # the device is no longer reachable: forget it
    FAILED = "failed"  # refused, or not sendable: do not try again


@dataclass(frozen=True)
class Outcome:
    """What one send came to, in the same terms for every platform."""

    result: Result
    status: int | None = None
    retry_after_s: float | None = None
    error: str = ""
    # Why a push failed, for ``bamchat_push_failures`` (FAILED only).
    reason: str = "refused"


@dataclass(frozen=True)
class Notification:
    """One push as every platform shows it."""

    title: str
    body: str
    collapse_id: str  # a newer push with the same id replaces an older one
    data: dict[str, str]  # type, bamId, messageId, seq: strings for every platform
    web_payload: dict  # the JSON a service worker reads (the Web Push contract)
    badge: int | None = None  # the recipient's total unread count


class Sender(Protocol):
    """Sends one notification to one device (a subscription or a device token)."""

    platform: str

    def send(self, *, target, notification: Notification) -> Outcome: ...


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@functools.cache
def _tls_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=default_ca_bundle())
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def tls_context() -> ssl.SSLContext:
    """The TLS context for push services: the usual CAs plus ``PUSH_CA_FILE``."""
    return _tls_context(settings.PUSH["CA_FILE"])


def status_outcome(
    status: int | None, *, retry_after_s: float | None = None, error: str = ""
) -> Outcome:
    """The outcome an HTTP status means where the service says nothing more:
    2xx sent; no answer, 429 or 5xx retry; anything else failed."""
    if status is not None and 200 <= status < 300:
        return Outcome(Result.SENT, status)
    if status is None or status == 429 or status >= 500:
        return Outcome(Result.RETRY, status, retry_after_s, error)
    return Outcome(Result.FAILED, status, error=error)
