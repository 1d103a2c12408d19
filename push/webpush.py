"""One Web Push request: RFC 8291 encryption by pywebpush (http-ece), RFC 8030
delivery over one connection to the checked endpoint, signed with this server's
VAPID key (RFC 8292).

A request has one deadline, ``PUSH_REQUEST_TIMEOUT_S``, for all of it (connect,
TLS, send, the whole answer), and at most ``ANSWER_MAX_BYTES`` of the answer are
read: a push service that trickles or floods is cut off, and the push is retried
later as if the service had not answered. No redirect is followed and no proxy
variable is read: a push goes to the allowed endpoint and nowhere else.
"""

import functools
import http.client
import io
import json
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings
from pywebpush import WebPusher
from requests.certs import where as ca_bundle

from push.endpoints import DEFAULT_PORTS, Endpoint, allowed_endpoint
from push.senders import (
    Notification,
    Outcome,
    Result,
    retry_after_seconds,
    status_outcome,
)
from push.vapid import vapid_identity

# A VAPID token lives this long (RFC 8292 allows at most 24 h).
VAPID_TOKEN_S = 12 * 3600
# A push service answers with a status line, a few headers and at most a short
# error text, well under this; more is not a push service's answer and is not read.
ANSWER_MAX_BYTES = 64 * 1024
ANSWER_READ_BYTES = 8192  # one read of the answer's body


@dataclass(frozen=True)
class PushAnswer:
    """What the push service said: its status (None if unreachable), Retry-After."""

    status: int | None
    retry_after_s: float | None = None
    error: str = ""
    allowed: bool = True  # False: not sent, the endpoint fails PUSH_ALLOWED_HOSTS now


class CutOff(Exception):
    """The request passed its deadline, or its answer passed ``ANSWER_MAX_BYTES``."""


def _remaining_s(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CutOff("deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket whose every send and receive ends by one deadline, and
    that receives at most ``ANSWER_MAX_BYTES`` in all (what http.client uses)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline, self._received = sock, deadline, 0

    def sendall(self, data) -> None:
        self._sock.settimeout(_remaining_s(self._deadline))
        self._sock.sendall(data)

    def recv_into(self, buffer) -> int:
        allowance = ANSWER_MAX_BYTES - self._received
        if allowance <= 0:
            raise CutOff(f"answer over {ANSWER_MAX_BYTES} bytes")
        self._sock.settimeout(_remaining_s(self._deadline))
        count = self._sock.recv_into(memoryview(buffer)[:allowance])
        self._received += count
        return count

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        return io.BufferedReader(_SocketReader(self))

    def close(self) -> None:
        self._sock.close()


class _SocketReader(io.RawIOBase):
    """The answer's bytes as a raw stream, read through a ``_DeadlineSocket``."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # The CA bundle requests used before, so the same push services are trusted.
    return ssl.create_default_context(cafile=ca_bundle())


class _Connection(http.client.HTTPConnection):
    """One exchange with the checked endpoint's host and port, by one deadline."""

    def __init__(self, endpoint: Endpoint, deadline: float) -> None:
        super().__init__(endpoint.host, endpoint.port)
        self.default_port = DEFAULT_PORTS[endpoint.scheme]  # left out of Host
        self._tls = endpoint.scheme == "https"
        self._deadline = deadline

    def connect(self) -> None:
        address = (self.host, self.port)
        sock = socket.create_connection(address, _remaining_s(self._deadline))
        try:
            if self._tls:
                sock.settimeout(_remaining_s(self._deadline))
                sock = _tls_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self._deadline)


def post(*, endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> PushAnswer:
    """POST ``body`` to the endpoint and read the whole answer, by the deadline."""
    deadline = time.monotonic() + settings.PUSH["REQUEST_TIMEOUT_S"]
    connection = _Connection(endpoint, deadline)
    try:
        connection.request("POST", endpoint.target, body=body, headers=headers)
        response = connection.getresponse()
        while response.read(ANSWER_READ_BYTES):
            pass  # the body tells nothing more than the status; it is only bounded
    except CutOff as exc:
        return PushAnswer(status=None, error=str(exc))
    except (OSError, http.client.HTTPException) as exc:
        return PushAnswer(status=None, error=type(exc).__name__)
    finally:
        connection.close()
    return PushAnswer(
        status=response.status,
        retry_after_s=retry_after_seconds(response.getheader("Retry-After")),
    )


def vapid_headers(endpoint: Endpoint) -> dict[str, str]:
    """``Authorization: vapid t=..., k=...`` for this endpoint's origin."""
    claims = {
        "sub": settings.PUSH["VAPID_SUBJECT"],
        "aud": endpoint.origin,
        "exp": int(time.time()) + VAPID_TOKEN_S,
    }
    return vapid_identity().sign(claims)


def send_push(
    *, endpoint: str, p256dh: str, auth: str, payload: dict, topic: str, ttl_s: int
) -> PushAnswer:
    """Encrypt ``payload`` (JSON) for one subscription and post it to its endpoint,
    if the endpoint passes the rule now (settings may have changed since)."""
    target = allowed_endpoint(endpoint)
    if target is None:
        return PushAnswer(status=None, error="endpoint not allowed", allowed=False)
    subscription = {"endpoint": target.url, "keys": {"p256dh": p256dh, "auth": auth}}
    body = WebPusher(subscription).encode(
        json.dumps(payload, ensure_ascii=False).encode(), "aes128gcm"
    )["body"]
    headers = {
        **vapid_headers(target),
        "Content-Encoding": "aes128gcm",
        "TTL": str(ttl_s),
        "Urgency": "high",
        "Topic": topic,
    }
    return post(endpoint=target, body=body, headers=headers)


GONE_STATUSES = (404, 410)


class WebPushSender:
    """Web Push to a browser's subscription: 404 or 410 mean it is gone."""

    platform = "web"

    def send(self, *, target, notification: Notification) -> Outcome:
        """Encrypt and post the notification's Web Push JSON to the subscription."""
        answer = send_push(
            endpoint=target.endpoint,
            p256dh=target.p256dh,
            auth=target.auth,
            payload=notification.web_payload,
            topic=notification.collapse_id,
            ttl_s=settings.PUSH["TTL_S"],
        )
        if not answer.allowed:  # not sent; kept, as the allow-list may change back
            return Outcome(Result.FAILED, error=answer.error, reason="not_allowed")
        if answer.status in GONE_STATUSES:
            return Outcome(Result.GONE, answer.status)
        return status_outcome(
            answer.status, retry_after_s=answer.retry_after_s, error=answer.error
        )
