"""Google's side of FCM HTTP v1, for end-to-end tests, on a loopback port.

``FcmService`` is a real HTTP server (aiohttp, in a thread of its own) with two
routes: the OAuth 2 token endpoint, which verifies a service account's JWT
assertion (RS256 signature with the test key's public key; iss, aud, scope, iat,
exp) and issues short-lived bearer tokens; and ``messages:send``, which accepts
only a live bearer token and a well-formed message, answering as a test
scripted (200 by default), or holding its answer until the test releases it.
``service_account_json`` is the key file a Firebase console would hand out, for
this service.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

WAIT_S = 15
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
# The audience Google's token endpoint requires of an assertion, wherever the
# credentials' token_uri points.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class FcmRequest:
    """One ``messages:send`` the service received, and the status it answered."""

    project: str
    bearer: str
    body: dict
    status: int
    at: float

    @property
    def token(self) -> str:
        return self.body["message"]["token"]


class FcmService:
    """OAuth token endpoint and FCM ``messages:send`` on 127.0.0.1."""

    def __init__(self, project_id: str = "bam-chat-test") -> None:
        self.project_id = project_id
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tokens: dict[str, float] = {}  # bearer token -> expiry (monotonic)
        self.token_requests = 0
        self.requests: list[FcmRequest] = []
        self.scripts: dict[str, list[tuple[int, dict, dict]]] = {}
        self._held: set[str] = set()
        self._released = threading.Event()
        self._changed = threading.Condition()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_account_json(self) -> str:
        """A service-account key file for this service's project."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project_id,
                "private_key_id": secrets.token_hex(20),
                "private_key": pem,
                "client_email": self.client_email,
                "client_id": "1234567890",
                "token_uri": f"{self.origin}/token",
            }
        )

    def start(self) -> FcmService:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/token", self._token)
            app.router.add_post("/v1/projects/{project}/messages:send", self._send)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, self._sock).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fcm-service", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the FCM service did not start"
        return self

    def stop(self) -> None:
        self._released.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def script(self, token: str, *answers: tuple[int, dict, dict]) -> None:
        """Answer the next sends to this device token: (status, headers, error)."""
        with self._changed:
            self.scripts.setdefault(token, []).extend(answers)

    def hold(self, token: str) -> None:
        """The next accepted send to this device token is recorded (the push has
        reached Google) but answered only on ``release()``: a send in flight for
        as long as a test needs."""
        with self._changed:
            self._released.clear()
            self._held.add(token)

    def release(self) -> None:
        """Answer the held send (if its client is still there to read it)."""
        self._released.set()

    def expire_tokens(self) -> None:
        """Every bearer token issued so far expires now (as after an hour)."""
        with self._changed:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.key.public_key(),
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": str(exc)}, status=400
            )
        if claims.get("scope") != SCOPE or claims["exp"] - claims["iat"] > 3600:
            return web.json_response({"error": "invalid_scope"}, status=400)
        access = secrets.token_urlsafe(24)
        with self._changed:
            self.token_requests += 1
            self.tokens[access] = time.monotonic() + TOKEN_LIFETIME_S
            self._changed.notify_all()
        return web.json_response(
            {
                "access_token": access,
                "expires_in": TOKEN_LIFETIME_S,
                "token_type": "Bearer",
            }
        )

    async def _send(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._changed:
            live = self.tokens.get(bearer, 0.0) > time.monotonic()
        if not live:
            return web.json_response(
                {"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status=401
            )
        body = await request.json()
        with self._changed:
            queue = self.scripts.get(body["message"]["token"])
            status, headers, error = queue.pop(0) if queue else (200, {}, {})
            try:
                check_message(body)
            except (AssertionError, KeyError, TypeError) as exc:
                status, headers = 400, {}
                error = {"status": "INVALID_ARGUMENT", "message": f"shape: {exc!r}"}
            held = status == 200 and body["message"]["token"] in self._held
            if held:
                self._held.discard(body["message"]["token"])
            self.requests.append(
                FcmRequest(
                    request.match_info["project"],
                    bearer,
                    body,
                    status,
                    time.monotonic(),
                )
            )
            self._changed.notify_all()
        if held:
            await asyncio.to_thread(self._released.wait, WAIT_S)
        if status == 200:
            name = f"projects/{self.project_id}/messages/{secrets.token_hex(8)}"
            return web.json_response({"name": name})
        return web.json_response({"error": error}, status=status, headers=headers)

    def to(self, token: str) -> list[FcmRequest]:
        with self._changed:
            return [r for r in self.requests if r.token == token]

    def delivered(self, token: str, message_id: str) -> list[FcmRequest]:
        """Accepted sends of one message to one device."""
        return [
            r
            for r in self.to(token)
            if r.status == 200 and r.body["message"]["data"]["messageId"] == message_id
        ]

    async def wait_request(self, token: str) -> FcmRequest:
        """Wait until a send to this device token arrived, however it was answered;
        the first."""

        def wait() -> None:
            with self._changed:
                if not self._changed.wait_for(lambda: self.to(token), WAIT_S):
                    raise AssertionError(f"no FCM send to {token[:8]} within {WAIT_S}s")

        await asyncio.to_thread(wait)
        return self.to(token)[0]

    async def wait_push(self, token: str, message_id: str) -> dict:
        """Wait until a send of this message to this device was accepted."""

        def arrived() -> bool:
            return bool(self.delivered(token, message_id))

        def wait() -> None:
            with self._changed:
                if not self._changed.wait_for(arrived, WAIT_S):
                    seen = [(r.token[:8], r.status) for r in self.requests]
                    raise AssertionError(
                        f"no FCM push of message {message_id} within {WAIT_S}s; "
                        f"got {seen}"
                    )

        await asyncio.to_thread(wait)
        return self.delivered(token, message_id)[0].body["message"]


def check_message(body: dict) -> None:
    """FCM's rules for a message that these tests rely on (data values strings)."""
    message = body["message"]
    assert set(message) == {"token", "notification", "data", "android", "apns"}
    assert set(message["notification"]) == {"title", "body"}
    assert all(isinstance(v, str) for v in message["data"].values()), message
    assert message["android"]["priority"] == "high", message
    assert message["android"]["collapse_key"].startswith(("bam-", "test")), message
    assert "thread-id" in message["apns"]["payload"]["aps"], message
