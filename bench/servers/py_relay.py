"""Reference server (3): a bare python-socketio relay, no Django, nothing stored.

    .venv/bin/python bench/servers/py_relay.py --port 8002 [--server uvicorn|aiohttp]
    .venv/bin/daphne -p 8002 bench.servers.py_relay:application   # from the project

It speaks just enough of the BAM Chat contract for ``bench/loadgen.mjs`` to drive
it like BAM Chat: the handshake's ``auth.token`` is taken as the user id (not
checked); ``join-bam`` / ``leave-bam`` with ack; ``typing-start`` /
``typing-stop`` -> ``typing-status`` to the room (sender excluded);
``send-message`` -> ``new-message`` to the room (sender included) and an ack
carrying the message. python-socketio runs with its defaults (a task per event,
no message queue). ``GET /health`` answers 200.

With ``PY_RELAY_REDIS_URL`` set, the relay uses python-socketio's own Redis
message queue (``AsyncRedisManager``): every emit goes through Redis and each
process sends it to its own sockets, the library's way of running several
processes behind one address. The bench runs it as one process and as two.
"""

import argparse
import itertools
import json
import os
import sys
from datetime import UTC, datetime

import socketio

_message_ids = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _bam_id(payload) -> str | None:
    raw = payload.get("bamId") if isinstance(payload, dict) else payload
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    return str(raw)


def _invalid(what: str) -> dict:
    return {"ok": False, "error": {"code": "invalid", "message": what}}


def build(async_mode: str, redis_url: str = "") -> socketio.AsyncServer:
    """A python-socketio server (library defaults) with the relay's handlers;
    with ``redis_url``, emits go through python-socketio's Redis manager."""
    sio = socketio.AsyncServer(
        async_mode=async_mode,
        client_manager=socketio.AsyncRedisManager(redis_url) if redis_url else None,
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
    )
    users: dict[str, str] = {}  # sid -> user id

    @sio.event
    async def connect(sid, environ, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        user_id = str(token if token is not None else sid)
        users[sid] = user_id
        await sio.enter_room(sid, f"user-{user_id}")

    @sio.event
    async def disconnect(sid, reason=None):
        users.pop(sid, None)

    def _who(sid) -> tuple[str, str]:
        user_id = users.get(sid, sid)
        return user_id, f"user{user_id}"

    @sio.on("join-bam")
    async def join_bam(sid, payload=None):
        bam_id = _bam_id(payload)
        if bam_id is None:
            return _invalid("bamId")
        user_id, username = _who(sid)
        room = f"bam-{bam_id}"
        await sio.enter_room(sid, room)
        await sio.emit(
            "user-joined-bam",
            {"bamId": bam_id, "userId": user_id, "username": username, "at": _now()},
            room=room,
            skip_sid=sid,
        )
        online = {
            users.get(other, "") for other, _ in sio.manager.get_participants("/", room)
        }
        return {"ok": True, "bamId": bam_id, "onlineUsers": sorted(online), "missed": 0}

    @sio.on("leave-bam")
    async def leave_bam(sid, payload=None):
        bam_id = _bam_id(payload)
        if bam_id is None:
            return _invalid("bamId")
        user_id, username = _who(sid)
        room = f"bam-{bam_id}"
        await sio.leave_room(sid, room)
        await sio.emit(
            "user-left-bam",
            {"bamId": bam_id, "userId": user_id, "username": username, "at": _now()},
            room=room,
        )
        return {"ok": True, "bamId": bam_id}

    async def _typing(sid, payload, is_typing: bool) -> dict:
        bam_id = _bam_id(payload)
        if bam_id is None:
            return _invalid("bamId")
        user_id, username = _who(sid)
        await sio.emit(
            "typing-status",
            {
                "bamId": bam_id,
                "userId": user_id,
                "username": username,
                "isTyping": is_typing,
            },
            room=f"bam-{bam_id}",
            skip_sid=sid,
        )
        return {"ok": True}

    @sio.on("typing-start")
    async def typing_start(sid, payload=None):
        return await _typing(sid, payload, True)

    @sio.on("typing-stop")
    async def typing_stop(sid, payload=None):
        return await _typing(sid, payload, False)

    @sio.on("send-message")
    async def send_message(sid, payload=None):
        bam_id = _bam_id(payload)
        content = (
            payload.get("content", payload.get("text"))
            if isinstance(payload, dict)
            else None
        )
        if bam_id is None or not isinstance(content, str):
            return _invalid("bad message")
        user_id, username = _who(sid)
        message = {
            "id": str(next(_message_ids)),
            "bamId": bam_id,
            "senderId": user_id,
            "sender": {"id": user_id, "username": username},
            "toUserId": None,
            "content": content,
            "text": content,
            "type": payload.get("type") or "text",
            "tempId": payload.get("tempId"),
            "createdAt": _now(),
        }
        await sio.emit("new-message", message, room=f"bam-{bam_id}")
        return {"ok": True, "message": message}

    return sio


async def health_app(scope, receive, send):
    """The non-Socket.IO part of the ASGI app: GET /health, 404 otherwise."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    ok = scope["path"].rstrip("/") == "/health"
    body = json.dumps({"ok": True}).encode() if ok else b""
    await send(
        {
            "type": "http.response.start",
            "status": 200 if ok else 404,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


# The relay as an ASGI application, for servers that import one (daphne:
# ``daphne bench.servers.py_relay:application``, from the project folder).
application = socketio.ASGIApp(
    build("asgi", os.environ.get("PY_RELAY_REDIS_URL", "")),
    other_asgi_app=health_app,
    socketio_path="socket.io",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--server", choices=("uvicorn", "aiohttp"), default="uvicorn")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost"):
        sys.exit("py_relay: loopback only")
    if args.server == "uvicorn":
        import uvicorn

        print(f"py_relay (uvicorn) listening on {args.host}:{args.port}", flush=True)
        uvicorn.run(
            application,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    else:
        run_aiohttp(args.host, args.port)


def run_aiohttp(host: str, port: int) -> None:
    """The same relay on aiohttp's server (python-socketio's aiohttp mode)."""
    from aiohttp import web

    sio = build("aiohttp")
    webapp = web.Application()
    sio.attach(webapp, socketio_path="socket.io")

    async def health(request):
        return web.json_response({"ok": True})

    webapp.router.add_get("/health", health)
    print(f"py_relay (aiohttp) listening on {host}:{port}", flush=True)
    web.run_app(webapp, host=host, port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
