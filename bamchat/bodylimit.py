"""An ASGI guard that refuses oversized upload bodies before Django spools them.

Django's ASGI handler reads a whole request body into a temporary file before
any view runs; for the upload path this guard answers 413 from the declared
Content-Length, and cuts a body that grows past the limit while it streams.
"""

import json
import logging
import re

logger = logging.getLogger(__name__)

TOO_LARGE_BODY = json.dumps(
    {"detail": "The upload is larger than the server accepts.", "code": "too_large"}
).encode()


class BodySizeLimit:
    """Wraps an ASGI HTTP app; requests whose path matches get a body limit."""

    def __init__(self, app, *, path: str, limit) -> None:
        self.app = app
        self.path = re.compile(path)
        self.limit = limit  # a callable: settings may change between requests

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.path.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send)
            return
        state = {"read": 0, "cut": False, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit:
                    state["cut"] = True
                    logger.info("Upload body cut at %s bytes", limit)
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
