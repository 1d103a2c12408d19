"""Apple's side of APNs, for end-to-end tests: HTTP/2 over TLS on a loopback port.

``ApnsService`` runs hypercorn (HTTP/2 only, in a thread of its own) with a
certificate from a throwaway test CA (``TestCa``, made with ``cryptography``). It
verifies each request's provider JWT (ES256 with the test ``.p8`` key's public
key; ``kid`` header, ``iss`` team id, recent ``iat``) and the ``apns-topic``,
``apns-push-type``, ``apns-collapse-id`` headers, records the push and answers as
a test scripted (200 by default).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.services import free_port

WAIT_S = 15
PROVIDER_TOKEN_MAX_AGE_S = 3600


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestCa:
    """A CA and a certificate it signed for 127.0.0.1, written under ``folder``."""

    def __init__(self, folder: Path) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BAM test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server-key.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(_pem(key))


@dataclass
class ApnsRequest:
    """One push APNs received, and the status it answered."""

    token: str
    headers: dict[str, str]
    body: dict
    http_version: str
    status: int
    at: float


class ApnsService:
    """APNs on 127.0.0.1 over HTTP/2 and TLS; ``p8`` is the provider key's file."""

    def __init__(self, folder: Path, *, team_id="TEAM123456", key_id="KEY1234567"):
        self.team_id, self.key_id = team_id, key_id
        self.topic = "chat.bam.ios"
        self.tls = TestCa(folder)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.p8 = folder / f"AuthKey_{key_id}.p8"
        self.p8.write_bytes(_pem(self.key))
        self.port = free_port()
        self.requests: list[ApnsRequest] = []
        self.scripts: dict[str, list[tuple[int, dict, str]]] = {}
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The server's settings for this service."""
        return {
            "APNS_KEY_FILE": str(self.p8),
            "APNS_KEY_ID": self.key_id,
            "APNS_TEAM_ID": self.team_id,
            "APNS_TOPIC": self.topic,
            "APNS_HOST": self.host,
            "PUSH_CA_FILE": str(self.tls.ca_file),
        }

    def start(self) -> ApnsService:
        config = Config()
        config.bind = [self.host]
        config.certfile = str(self.tls.cert_file)
        config.keyfile = str(self.tls.key_file)
        config.alpn_protocols = ["h2"]
        config.accesslog = None
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            loop.call_soon(ready.set)
            loop.run_until_complete(
                serve(self._app, config, shutdown_trigger=self._stop.wait)
            )
            loop.close()

        self._thread = threading.Thread(target=run, name="apns-service", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the APNs service did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def script(self, token: str, *answers: tuple[int, dict, str]) -> None:
        """Answer the next pushes to this token: (status, headers, reason)."""
        with self._changed:
            self.scripts.setdefault(token, []).extend(answers)

    def _refusal(self, scope: dict, headers: dict[str, str]) -> str:
        """Why APNs would refuse this request ('' if it would not)."""
        if scope["http_version"] != "2":
            return "HTTP/2 required"
        auth = headers.get("authorization", "")
        if not auth.startswith("bearer "):
            return "MissingProviderToken"
        token = auth.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or header.get("alg") != "ES256":
            return "InvalidProviderToken"
        if time.time() - claims["iat"] > PROVIDER_TOKEN_MAX_AGE_S:
            return "ExpiredProviderToken"
        if headers.get("apns-topic") != self.topic:
            return "BadTopic"
        if headers.get("apns-push-type") != "alert":
            return "InvalidPushType"
        if not headers.get("apns-collapse-id", "").startswith(("bam-", "test")):
            return "BadCollapseId"
        if headers.get("apns-priority") != "10":
            return "BadPriority"
        if not headers.get("apns-expiration", "").isdigit():
            return "BadExpirationDate"
        return ""

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        token = scope["path"].removeprefix("/3/device/")
        refusal = self._refusal(scope, headers)
        with self._changed:
            queue = self.scripts.get(token)
            status, extra, reason = queue.pop(0) if queue else (200, {}, "")
            if refusal:
                status, extra, reason = 403, {}, refusal
            self.requests.append(
                ApnsRequest(
                    token,
                    headers,
                    json.loads(body or b"{}"),
                    scope["http_version"],
                    status,
                    time.monotonic(),
                )
            )
            self._changed.notify_all()
        answer = json.dumps({"reason": reason}).encode() if reason else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"apns-id", b"00000000-0000-0000-0000-000000000000"),
                    *((k.encode(), v.encode()) for k, v in extra.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def to(self, token: str) -> list[ApnsRequest]:
        with self._changed:
            return [r for r in self.requests if r.token == token]

    def delivered(self, token: str, message_id: str) -> list[ApnsRequest]:
        """Accepted pushes of one message to one device."""
        return [
            r
            for r in self.to(token)
            if r.status == 200 and r.body.get("messageId") == message_id
        ]

    async def wait_push(self, token: str, message_id: str) -> ApnsRequest:
        """Wait until a push of this message to this device was accepted."""

        def wait() -> None:
            with self._changed:
                if not self._changed.wait_for(
                    lambda: self.delivered(token, message_id), WAIT_S
                ):
                    seen = [(r.token[:8], r.status) for r in self.requests]
                    raise AssertionError(
                        f"no APNs push of message {message_id} within {WAIT_S}s; "
                        f"got {seen}"
                    )

        await asyncio.to_thread(wait)
        return self.delivered(token, message_id)[0]
