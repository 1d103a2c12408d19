"""A Web Push service and a browser's side of a subscription, for end-to-end tests.

``PushService`` is a real HTTP server (aiohttp) on a loopback port, run in a thread
of its own: it records each request and answers as a test scripted it (201 by
default). ``Browser`` holds a subscription's private key and auth secret as a
browser does and decrypts what arrives (RFC 8291, aes128gcm). ``check_push``
verifies the headers and the VAPID JWT (RFC 8292) of one request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

WAIT_S = 15
VAPID_HEADER = re.compile(r"^vapid t=([^,\s]+),\s*k=([^,\s]+)$")
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushRequest:
    """One request the push service received, and the status it answered."""

    path: str
    headers: Mapping[str, str]  # a CIMultiDict: names are case-insensitive
    body: bytes
    status: int
    at: float
    # A streamed answer: body bytes written so far; True once all were written,
    # False when the client closed the connection first.
    sent: int = 0
    finished: bool | None = None


@dataclass(frozen=True)
class Streamed:
    """A scripted answer whose body of ``size`` bytes goes out ``chunk`` bytes at a
    time, ``every_s`` apart: a trickling or a flooding push service."""

    size: int
    chunk: int
    every_s: float = 0.0
    status: int = 201


class PushService:
    """A push service on 127.0.0.1 answering ``POST /push/<token>`` (and any POST)."""

    def __init__(self) -> None:
        self.requests: list[PushRequest] = []
        self.scripts: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._changed = threading.Condition()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushService:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            # Every path: a push sent anywhere on this host is seen and recorded.
            app.router.add_post("/{path:.*}", self._handle)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, self._sock).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="push-service", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the push service did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def script(
        self, path: str, *answers: tuple[int, dict[str, str]] | Streamed
    ) -> None:
        """Answer the next requests to ``path`` with these statuses and headers, or
        streamed bodies."""
        with self._changed:
            self.scripts.setdefault(path, []).extend(answers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._changed:
            queue = self.scripts.get(request.path)
            answer = queue.pop(0) if queue else (201, {})
            status, headers = (
                (answer.status, {}) if isinstance(answer, Streamed) else answer
            )
            record = PushRequest(
                request.path, request.headers.copy(), body, status, time.monotonic()
            )
            self.requests.append(record)
            self._changed.notify_all()
        if isinstance(answer, Streamed):
            return await self._stream(request, record, answer)
        return web.Response(status=status, headers=headers)

    async def _stream(
        self, request: web.Request, record: PushRequest, answer: Streamed
    ) -> web.StreamResponse:
        """Send a streamed answer, recording how far it got before the client left."""
        response = web.StreamResponse(
            status=answer.status, headers={"Content-Length": str(answer.size)}
        )
        finished = False
        try:
            await response.prepare(request)
            while record.sent < answer.size:
                part = b"x" * min(answer.chunk, answer.size - record.sent)
                await response.write(part)
                record.sent += len(part)
                if answer.every_s:
                    await asyncio.sleep(answer.every_s)  # the service trickles
            await response.write_eof()
            finished = True
        except ConnectionError:
            pass  # the client closed the connection mid-answer
        finally:
            with self._changed:
                record.finished = finished
                self._changed.notify_all()
        return response

    def to(self, path: str) -> list[PushRequest]:
        with self._changed:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, what: str, predicate, timeout: float = WAIT_S) -> None:
        """Block until ``predicate(requests)`` holds; fail saying what did not come."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.requests), timeout):
                seen = [(r.path, r.status) for r in self.requests]
                raise AssertionError(
                    f"{what} did not arrive within {timeout}s; got {seen}"
                )

    async def wait(self, what: str, predicate, timeout: float = WAIT_S) -> None:
        """``wait_for`` from a test's event loop."""
        await asyncio.to_thread(self.wait_for, what, predicate, timeout)


class Browser:
    """One browser's push subscription: its keys stay here, as in a browser."""

    def __init__(self, service: PushService) -> None:
        self.service = service
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.path = f"/push/{uuid.uuid4().hex}"
        self.endpoint = service.origin + self.path

    def subscription(self) -> dict:
        """What ``PushSubscription.toJSON()`` gives."""
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, request: PushRequest) -> dict:
        """The JSON a service worker would read from this push."""
        plain = http_ece.decrypt(
            request.body,
            private_key=self.key,
            auth_secret=self.auth,
            version="aes128gcm",
        )
        return json.loads(plain)

    def delivered(self) -> list[dict]:
        """Decrypted payloads of the pushes this service accepted (2xx)."""
        return [
            self.decrypt(r) for r in self.service.to(self.path) if 200 <= r.status < 300
        ]

    def delivered_for(self, message_id: str) -> list[dict]:
        return [p for p in self.delivered() if p.get("messageId") == message_id]

    async def wait_push(self, message_id: str, timeout: float = WAIT_S) -> dict:
        """Wait until a push for this message was accepted; return its payload."""

        def arrived(requests) -> bool:
            return any(
                r.path == self.path
                and 200 <= r.status < 300
                and self.decrypt(r).get("messageId") == message_id
                for r in requests
            )

        await self.service.wait(f"a push of message {message_id}", arrived, timeout)
        return self.delivered_for(message_id)[0]


def check_push(
    request: PushRequest, *, vapid_key: str, origin: str, ttl: int, subject: str
) -> dict:
    """Check one request's Web Push headers and VAPID signature; its JWT claims."""
    headers = request.headers
    assert headers["Content-Encoding"] == "aes128gcm", headers
    assert headers["TTL"] == str(ttl), headers
    assert headers["Urgency"] == "high", headers
    assert TOPIC.fullmatch(headers["Topic"]), headers
    match = VAPID_HEADER.fullmatch(headers["Authorization"])
    assert match, headers["Authorization"]
    token, key = match.groups()
    assert key == vapid_key, "the k= key is not the one /push/vapid-key gives"
    head_b64, claims_b64, signature_b64 = token.split(".")
    assert json.loads(unb64url(head_b64))["alg"] == "ES256"
    signature = unb64url(signature_b64)
    assert len(signature) == 64, "an ES256 JWT signature is r||s, 64 bytes"
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), unb64url(vapid_key)
    )
    try:
        public.verify(
            encode_dss_signature(
                int.from_bytes(signature[:32], "big"),
                int.from_bytes(signature[32:], "big"),
            ),
            f"{head_b64}.{claims_b64}".encode(),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise AssertionError("the VAPID JWT's signature does not verify") from None
    claims = json.loads(unb64url(claims_b64))
    assert claims["aud"] == origin, claims
    assert claims["sub"] == subject, claims
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600, claims
    return claims
