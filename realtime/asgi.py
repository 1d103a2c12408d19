"""ASGI pieces of realtime: the process starter and the gate in front of the engine."""

import logging

from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger(__name__)


class ProcessStarter:
    """Starts this process's realtime machinery with its first call, and runs the
    ASGI lifespan (servers that send it, e.g. uvicorn, drain on shutdown)."""

    def __init__(self, app, server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.server.process.ensure_started()
        await self.app(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.server.process.ensure_started()
                except Exception as exc:
                    logger.exception("Realtime could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.server.process.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return


class SocketGate:
    """In front of the Socket.IO engine: a host Django would refuse is refused
    here too, and no new connection is taken while the process stops or while
    its event loop is overloaded (a connect storm): a quick 503 lets the client
    retry after its back-off instead of queueing work that would time out."""

    def __init__(self, app, server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send(
                {"type": "websocket.close", "code": 1013 if refusal == 503 else 1008}
            )
        else:
            body = (
                b'{"detail": "Not taking new connections now; retry shortly."}'
                if refusal == 503
                else b'{"detail": "Host not allowed."}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": refusal,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope) -> int | None:
        process = self.server.process
        if process.draining:
            return 503
        if process.overloaded and b"sid=" not in scope.get("query_string", b""):
            return 503  # a new session; running sessions are always served
        host = ""
        for name, value in scope.get("headers") or ():
            if name == b"host":
                host = value.decode("latin-1")
                break
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        if not domain or not validate_host(domain, allowed):
            logger.warning("Refused a Socket.IO request for host %r", host[:100])
            return 400
        return None
