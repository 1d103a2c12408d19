"""Socket.IO event handlers: validate, check, call the services, answer the ack.

Every client event answers ``{ok: true, ...}`` or ``{ok: false, error: {code,
message}}``; nothing a client sends can break its connection.
"""

import asyncio
import functools
import logging
import math
import time

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone
from socketio.exceptions import ConnectionRefusedError as Refused

from bamchat.errors import DomainError, Invalid, NotFound, invalid
from messaging import selectors as messaging_selectors
from messaging import services as messaging_services
from messaging.serializers import message_payload
from realtime import selectors, services
from realtime.auth import AuthRefused, identity_from_token, token_from_handshake
from realtime.events import bam_room, user_room

logger = logging.getLogger(__name__)

# How many missed messages ``join-bam`` replays at most; older ones come from REST.
REPLAY_LIMIT = 1000


def error_ack(code: str, message: str, **extra) -> dict:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


def _ack_for(exc: DomainError) -> dict:
    extra = {"fields": exc.fields} if exc.fields else {}
    return error_ack(exc.code, exc.message, **extra)


def _bam_id_of(payload, *, allow_bare: bool = True) -> int:
    if isinstance(payload, dict):
        if "bamId" not in payload:
            raise invalid("bamId", "bamId is required.")
        raw = payload["bamId"]
    elif allow_bare:
        raw = payload
    else:
        raise Invalid("Expected an object with bamId.")
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int):
        raise invalid("bamId", "bamId must be a string id.")
    return messaging_selectors.parse_id(raw, what="BAM")


def _client_address(environ: dict) -> str:
    return str(environ.get("REMOTE_ADDR") or "")


def register(sio) -> None:
    """Attach every handler of the contract to the server."""

    def client_event(name: str, *, limit: str | None = None):
        def decorate(fn):
            @functools.wraps(fn)
            async def handler(sid, *args):
                state = sio.sockets.get(sid)
                if state is None:
                    return error_ack("forbidden", "Not connected.")
                payload = args[0] if args else None
                try:
                    if limit:
                        wait = await sio.limiter.retry_after(
                            user_id=state.user_id, action=limit
                        )
                        if wait is not None:
                            return error_ack(
                                "rate_limited",
                                "Too many requests; slow down.",
                                retryAfter=math.ceil(wait * 1000) / 1000,
                            )
                    _note_transport(sid, state)
                    result = await fn(sid, state, payload)
                except DomainError as exc:
                    return _ack_for(exc)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("Handler %s failed", name)
                    return error_ack("internal", "Something went wrong on the server.")
                return {"ok": True, **(result or {})}

            sio.on(name, handler)
            return handler

        return decorate

    def _note_transport(sid: str, state) -> None:
        try:
            current = sio.transport(sid)
        except Exception:
            return
        if current != state.transport:
            state.transport = current
            sio.background(
                database_sync_to_async(services.connection_set_transport)(
                    sid=sid, transport=current
                )
            )

    async def _ensure_participant(state, bam_id: int) -> None:
        if bam_id in state.bams:
            return
        if not await database_sync_to_async(messaging_selectors.is_participant)(
            bam_id=bam_id, user_id=state.user_id
        ):
            raise NotFound("No such BAM.")
        state.bams.add(bam_id)

    # -- connection lifecycle ---------------------------------------------------------
    @sio.event
    async def connect(sid, environ, auth=None):
        try:
            token = token_from_handshake(environ, auth)
            identity = await database_sync_to_async(identity_from_token)(token)
        except AuthRefused as exc:
            raise Refused(exc.message, {"code": exc.code}) from None
        remaining = identity.expires_at - time.time()
        if remaining <= 0:
            raise Refused("Token expired.", {"code": "token_expired"})
        await sio.process.ensure_started()
        transport = sio.transport(sid)
        state = sio.sockets[sid] = _new_state(identity, transport)
        await sio.enter_room(sid, user_room(identity.user_id))
        try:
            await database_sync_to_async(services.connection_open)(
                sid=sid,
                user_id=identity.user_id,
                process_id=sio.process.id,
                transport=transport,
                client_address=_client_address(environ),
            )
        except Exception:
            sio.sockets.pop(sid, None)
            logger.exception("Could not record connection")
            raise Refused("Server error; retry.", {"code": "internal"}) from None
        loop = asyncio.get_running_loop()
        state.expiry_timer = loop.call_later(
            remaining, lambda: sio.background(_expire(sid))
        )

    def _new_state(identity, transport):
        from realtime.server import SocketState

        return SocketState(
            user_id=identity.user_id,
            username=identity.username,
            expires_at=identity.expires_at,
            transport=transport,
        )

    async def _expire(sid: str) -> None:
        if sid in sio.sockets:
            await sio.emit(
                "token-expired",
                {"code": "token_expired", "message": "Token expired; reconnect."},
                to=sid,
            )
            await sio.disconnect(sid)

    @sio.event
    async def disconnect(sid, reason=None):
        state = sio.sockets.pop(sid, None)
        if state is None:
            return
        if state.expiry_timer is not None:
            state.expiry_timer.cancel()
        bam_ids = [
            int(r[4:])
            for r in sio.rooms(sid)
            if isinstance(r, str) and r.startswith("bam-")
        ]
        await sio.typing.stop_all(user_id=state.user_id, bam_ids=bam_ids)
        at = _now_iso()
        for bam_id in bam_ids:
            await sio.leave_room(sid, bam_room(bam_id))
            await sio.emit(
                "user-left-bam",
                {
                    "bamId": str(bam_id),
                    "userId": str(state.user_id),
                    "username": state.username,
                    "at": at,
                },
                room=bam_room(bam_id),
            )
        try:
            await database_sync_to_async(services.connection_close)(
                sid=sid, user_id=state.user_id
            )
        except Exception:
            logger.exception("Could not forget connection %s; the reaper will", sid)

    # -- client events ----------------------------------------------------------------
    @client_event("join-bam", limit="join-bam")
    async def join_bam(sid, state, payload):
        bam_id = _bam_id_of(payload)
        since = payload.get("since") if isinstance(payload, dict) else None
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, str | int)
        ):
            raise invalid("since", "since must be a message id.")
        # Joining is when access is decided: always ask the database.
        last_seq = await database_sync_to_async(messaging_selectors.bam_last_seq_for)(
            bam_id=bam_id, user_id=state.user_id
        )
        if last_seq is None:
            state.bams.discard(bam_id)
            raise NotFound("No such BAM.")
        state.bams.add(bam_id)
        room = bam_room(bam_id)
        sio.manager.room_seq_init(room, last_seq)
        missed = 0
        if since is None:
            await sio.enter_room(sid, room)
            newly = await database_sync_to_async(services.room_join)(
                sid=sid, user_id=state.user_id, bam_id=bam_id
            )
        else:
            anchor = await database_sync_to_async(_anchor_seq)(bam_id, since)
            # Hold live messages for this socket until its history has been sent,
            # so it sees every message once and in order.
            sio.manager.replay_begin(sid, room)
            try:
                await sio.enter_room(sid, room)
                newly = await database_sync_to_async(services.room_join)(
                    sid=sid, user_id=state.user_id, bam_id=bam_id
                )
                history = await database_sync_to_async(_history_after)(bam_id, anchor)
                for item in history:
                    await sio.manager.send_local("new-message", item, [sid])
                last_seq = history[-1]["seq"] if history else anchor
                missed = len(history) + await sio.manager.replay_end(
                    sid, room, last_seq
                )
            finally:
                sio.manager.replay_cancel(sid, room)
        if newly:
            await sio.emit(
                "user-joined-bam",
                {
                    "bamId": str(bam_id),
                    "userId": str(state.user_id),
                    "username": state.username,
                    "at": _now_iso(),
                },
                room=room,
                skip_sid=sid,
            )
        online = await database_sync_to_async(selectors.online_user_ids_in_bam)(
            bam_id=bam_id
        )
        return {"bamId": str(bam_id), "onlineUsers": online, "missed": missed}

    @client_event("leave-bam", limit="join-bam")
    async def leave_bam(sid, state, payload):
        bam_id = _bam_id_of(payload)
        room = bam_room(bam_id)
        if room not in sio.rooms(sid):
            await _ensure_participant(state, bam_id)
            return {"bamId": str(bam_id)}
        await sio.typing.stop(bam_id=bam_id, user_id=state.user_id)
        await sio.leave_room(sid, room)
        await database_sync_to_async(services.room_leave)(sid=sid, bam_id=bam_id)
        await sio.emit(
            "user-left-bam",
            {
                "bamId": str(bam_id),
                "userId": str(state.user_id),
                "username": state.username,
                "at": _now_iso(),
            },
            room=room,
        )
        return {"bamId": str(bam_id)}

    @client_event("send-message", limit="send-message")
    async def send_message(sid, state, payload):
        if not isinstance(payload, dict):
            raise Invalid(
                "Expected an object {bamId, content, type?, tempId?, toUserId?}."
            )
        bam_id = _bam_id_of(payload, allow_bare=False)
        content = payload.get("content", payload.get("text"))
        message = await database_sync_to_async(_create_message)(
            bam_id=bam_id,
            user_id=state.user_id,
            username=state.username,
            content=content,
            type=payload.get("type"),
            temp_id=payload.get("tempId"),
            to_user_id=_optional_id(payload.get("toUserId"), "toUserId"),
        )
        await sio.typing.stop(bam_id=bam_id, user_id=state.user_id)
        return {"message": message}

    @client_event("typing-start", limit="typing")
    async def typing_start(sid, state, payload):
        bam_id = _bam_id_of(payload)
        await _ensure_participant(state, bam_id)
        await sio.typing.start(
            bam_id=bam_id, user_id=state.user_id, username=state.username, sid=sid
        )

    @client_event("typing-stop", limit="typing")
    async def typing_stop(sid, state, payload):
        bam_id = _bam_id_of(payload)
        await _ensure_participant(state, bam_id)
        await sio.typing.stop(bam_id=bam_id, user_id=state.user_id)

    @client_event("status-change", limit="status-change")
    async def status_change(sid, state, payload):
        presence = await database_sync_to_async(services.presence_set_status)(
            user_id=state.user_id, status=payload
        )
        return {"status": presence.status}

    @sio.on("*")
    async def unknown_event(event, sid, *args):
        return error_ack("invalid", f"Unknown event {str(event)[:50]!r}.")


def _optional_id(raw, field_name: str):
    if raw in (None, ""):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise invalid(field_name, f"{field_name} must be a string id.")
    return raw


def _create_message(
    *, bam_id, user_id, username, content, type, temp_id, to_user_id
) -> dict:
    # The socket's user was checked at connect and is dropped on deactivation,
    # so the sender needs no query: id and username are all the payload uses.
    sender = get_user_model()(pk=user_id, username=username)
    message = messaging_services.message_create(
        bam_id=bam_id,
        sender=sender,
        content=content,
        type=type,
        temp_id=temp_id,
        to_user_id=to_user_id,
    )
    return message_payload(message)


def _anchor_seq(bam_id: int, since) -> int:
    from messaging.models import Message

    try:
        pk = messaging_selectors.parse_id(since, what="message")
    except NotFound:
        raise invalid("since", "since must be a message id.") from None
    seq = (
        Message.objects.filter(pk=pk, bam_id=bam_id)
        .values_list("seq", flat=True)
        .first()
    )
    if seq is None:
        raise NotFound("since: no such message in this BAM.")
    return seq


def _history_after(bam_id: int, anchor_seq: int) -> list[dict]:
    from messaging.models import Message

    items = (
        Message.objects.filter(bam_id=bam_id, seq__gt=anchor_seq)
        .select_related("sender")
        .order_by("seq")
    )
    return [message_payload(m) for m in items[:REPLAY_LIMIT]]


def _now_iso() -> str:
    return selectors.iso(timezone.now())
