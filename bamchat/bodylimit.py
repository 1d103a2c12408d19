"""How large a request body may be, and the ASGI guard that enforces it.

The rule (``request_body_limit``): a request carrying credentials (an
``Authorization`` header or the session cookie) may send ``HTTP_MAX_BODY_BYTES``,
any other ``HTTP_MAX_ANONYMOUS_BODY_BYTES``. Under daphne it is applied while the
body arrives, before daphne buffers it (``bamchat.daphne_request``); under any ASGI
server ``BodySizeLimit`` applies it, and the upload path's own limit, to what the
app receives. Either way the answer is the same 413 ``too_large``, counted once.
"""

import json
import logging
import re
from collections.abc import Callable, Iterable

from django.conf import settings
from prometheus_client import Counter

logger = logging.getLogger(__name__)

TOO_LARGE_BODY = json.dumps(
    {
        "detail": "The request body is larger than the server accepts.",
        "code": "too_large",
    }
).encode()

BODIES_REFUSED = Counter(
    "bamchat_http_bodies_refused",
    "Request bodies refused with 413 for their size: declared (Content-Length over "
    "the limit, refused before the body is read) or received (cut once past it).",
    ["when"],
)
refused = {when: BODIES_REFUSED.labels(when) for when in ("declared", "received")}


def has_credentials(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request sends an Authorization header or the session cookie (checked
    for presence only: the app refuses a wrong one before it parses the body)."""
    session_cookie = settings.SESSION_COOKIE_NAME.encode()
    for name, value in headers:
        name = name.lower()
        if name == b"authorization":
            return True
        if name == b"cookie" and any(
            part.strip().partition(b"=")[0] == session_cookie
            for part in value.split(b";")
        ):
            return True
    return False


def request_body_limit(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The largest body (bytes) a request with these headers may send."""
    if has_credentials(headers):
        return settings.HTTP_MAX_BODY_BYTES
    return settings.HTTP_MAX_ANONYMOUS_BODY_BYTES


def body_refused(when: str, *, size: int, limit: int) -> None:
    """Count and log one body refused for its size."""
    refused[when].inc()
    logger.info("Request body refused: %s %s bytes, limit %s", when, size, limit)


class BodySizeLimit:
    """Wraps an ASGI HTTP app: a body over ``limit(scope)`` bytes is refused with 413
    from its declared Content-Length, or cut once that much has arrived."""

    def __init__(
        self, app, *, limit: Callable[[dict], int], path: str | None = None
    ) -> None:
        self.app = app
        self.limit = limit  # called per request: settings may change between them
        self.path = re.compile(path) if path else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (
            self.path and not self.path.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            body_refused("declared", size=declared, limit=limit)
            await _too_large(send)
            return
        state = {"read": 0, "cut": False, "started": False}

        async def limited_receive():
            if state["cut"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit:
                    state["cut"] = True
                    body_refused("received", size=state["read"], limit=limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if state["cut"] and not state["started"]:
            await _too_large(send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE_BODY)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE_BODY})
