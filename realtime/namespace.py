"""Socket.IO handlers of the contract, as one namespace class.

``join-bam`` is handled by ``on_join_bam``: a client event is a method marked
with ``@client_event``; the ack, the rate limit and the error handling are
written once, in ``trigger_event``. Lifecycle names (``connect``,
``disconnect`` ...) never reach here from a client: the server refuses them.
"""

import asyncio
import logging
import math
import re
import time

import socketio
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from socketio.exceptions import ConnectionRefusedError as Refused

from bamchat.clientaddr import client_address
from bamchat.errors import DomainError, Invalid, NotFound, invalid
from bamchat.formats import iso
from messaging import lifecycle
from messaging import selectors as messaging_selectors
from messaging.cleaning import message_text_of
from messaging.drafts import message_draft
from messaging.serializers import message_payload
from realtime import bus, metrics
from realtime.auth import AuthRefused, access_token_of, token_from_handshake
from realtime.roster import SocketInfo

logger = logging.getLogger(__name__)

# Events of one socket waiting for their turn, at most; more are refused.
MAX_WAITING_EVENTS = 32
BUSY_RETRY_AFTER_S = 1.0

# Client event names: lower-case words joined by dashes (``send-message``).
CLIENT_EVENT_NAME = re.compile(r"[a-z]+(?:-[a-z]+)*")


def error_ack(code: str, message: str, **extra) -> dict:
    """The ack of a refused event."""
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


def client_event(*, limit: str | None = None):
    """Mark a method as the handler of a client event, with its rate-limit bucket."""

    def mark(method):
        method.client_event = True
        method.rate_limit = limit
        return method

    return mark


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


def _since_of(payload) -> tuple[object | None, int | None]:
    """``since`` (a message id) and ``sinceSeq`` (a number) of a join, if given."""
    if not isinstance(payload, dict):
        return None, None
    since, since_seq = payload.get("since"), payload.get("sinceSeq")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, str | int)
    ):
        raise invalid("since", "since must be a message id.")
    if since_seq is not None and (
        isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0
    ):
        raise invalid("sinceSeq", "sinceSeq must be a whole number.")
    return since, since_seq


def _client_address(environ: dict) -> str:
    # The engine's ASGI driver puts a fixed REMOTE_ADDR in its environ; the real
    # peer is in the ASGI scope.
    scope = environ.get("asgi.scope") or {}
    peer = (scope.get("client") or (None, 0))[0]
    return client_address(peer=peer, forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"))[
        :64
    ]


class BamNamespace(socketio.AsyncNamespace):
    """The contract's events on namespace ``/``."""

    async def trigger_event(self, event, *args):
        if event == "connect":
            return await self.on_connect(*args)
        if event == "disconnect":
            return await self.on_disconnect(*args)
        sid, *rest = args
        ack = await self._client_event(event, sid, rest[0] if rest else None)
        return metrics.received.count(event, ack)

    async def _client_event(self, event: str, sid: str, payload):
        """Run a socket's events one at a time, in order; refuse at once what
        would wait behind ``MAX_WAITING_EVENTS`` others.

        Each event is its own task (``async_handlers``), so the socket's reader
        keeps reading: Engine.IO pongs are answered however long the events
        take, and a client sending faster than its events complete gets slower
        acks, then ``rate_limited``, instead of a queue that grows.
        """
        info = self.server.roster.local.get(sid)
        if info is None:
            return error_ack("forbidden", "Not connected.")
        if info.waiting >= MAX_WAITING_EVENTS:
            return error_ack(
                "rate_limited",
                "Too many events waiting on this connection; slow down.",
                retryAfter=BUSY_RETRY_AFTER_S,
            )
        info.waiting += 1
        try:
            async with info.turn:
                if info.gone:
                    return error_ack("forbidden", "Not connected.")
                return await self._run_client_event(event, info, payload)
        finally:
            info.waiting -= 1

    async def _run_client_event(self, event: str, info: SocketInfo, payload):
        server = self.server
        handler = None
        if isinstance(event, str) and CLIENT_EVENT_NAME.fullmatch(event):
            handler = getattr(self, "on_" + event.replace("-", "_"), None)
        if not getattr(handler, "client_event", False):
            return error_ack("invalid", f"Unknown event {str(event)[:50]!r}.")
        try:
            if handler.rate_limit:
                wait = await server.limiter.retry_after(
                    user_id=info.user_id, action=handler.rate_limit
                )
                if wait is not None:
                    return error_ack(
                        "rate_limited",
                        "Too many requests; slow down.",
                        retryAfter=math.ceil(wait * 1000) / 1000,
                    )
            self._note_transport(info)
            result = await handler(info, payload)
        except DomainError as exc:
            extra = {"fields": exc.fields} if exc.fields else {}
            return error_ack(exc.code, exc.message, **extra)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Handler of %s failed", event)
            return error_ack("internal", "Something went wrong on the server.")
        return {"ok": True, **(result or {})}

    def _note_transport(self, info: SocketInfo) -> None:
        try:
            current = self.server.transport(info.sid)
        except Exception:
            return
        if current != info.transport:
            info.transport = current
            self.server.background(self.server.roster.view.socket_changed(info))

    async def _ensure_access(self, info: SocketInfo, bam_id: int) -> None:
        if bam_id in info.access:
            return
        if not await database_sync_to_async(messaging_selectors.is_participant)(
            bam_id=bam_id, user_id=info.user_id
        ):
            raise NotFound("No such BAM.")
        info.access.add(bam_id)

    # -- lifecycle ------------------------------------------------------------------
    async def on_connect(self, sid, environ, auth=None):
        server = self.server
        if server.process.draining:
            raise Refused("Server restarting; reconnect.", {"code": "internal"})
        try:
            access = access_token_of(token_from_handshake(environ, auth))
            identity = await server.handshakes.submit(access)
        except AuthRefused as exc:
            raise Refused(exc.message, {"code": exc.code}) from None
        remaining = identity.expires_at - time.time()
        if remaining <= 0:
            raise Refused("Token expired.", {"code": "token_expired"})
        held = len(server.roster.by_user.get(identity.user_id, ()))
        if held >= settings.REALTIME["MAX_SOCKETS_PER_USER"]:
            raise Refused(
                "Too many connections for this account; close some.",
                {"code": "rate_limited"},
            )
        info = SocketInfo(
            sid=sid,
            eio_sid=server.manager.eio_sid_from_sid(sid, "/"),
            user_id=identity.user_id,
            username=identity.username,
            expires_at=identity.expires_at,
            transport=server.transport(sid),
            address=_client_address(environ),
        )
        await server.presence.connected(info)
        info.expiry = asyncio.get_running_loop().call_later(
            remaining, lambda: server.background(self._expire(sid))
        )

    async def _expire(self, sid: str) -> None:
        if sid in self.server.roster.local:
            await self.server.relay.send(
                "token-expired",
                {"code": "token_expired", "message": "Token expired; reconnect."},
                [sid],
            )
            await self.server.disconnect(sid)

    async def on_disconnect(self, sid, reason=None):
        server = self.server
        info = server.roster.local.get(sid)
        if info is None:
            return
        info.gone = True  # an event still running cannot put it back in a room
        for bam_id in list(info.rooms):
            await server.room_leave(info, bam_id, announce=True)
        # A stopping process checks all its users at once after the grace.
        await server.presence.disconnected(sid, check_later=not server.process.draining)

    # -- client events --------------------------------------------------------------
    @client_event(limit="join-bam")
    async def on_join_bam(self, info: SocketInfo, payload):
        server = self.server
        bam_id = _bam_id_of(payload)
        since, since_seq = _since_of(payload)
        # Be in the BAM's group before reading its last seq: nothing committed
        # after the read can then pass by unseen.
        stream = await server.relay.stream(bam_id)
        info.revoked.discard(bam_id)  # a removal from now on cancels this join
        try:
            latest, anchor = await server.joins.submit((bam_id, info.user_id, since))
        except DomainError:
            info.access.discard(bam_id)
            await server.relay.unwatch(bam_id, info.sid)
            raise
        info.access.add(bam_id)
        newly = await server.roster.enter(info, bam_id)
        if bam_id in info.revoked:  # removed while this join waited
            info.access.discard(bam_id)
            await server.room_leave(info, bam_id, announce=False)
            raise NotFound("No such BAM.")
        if info.gone:  # disconnected while this join waited
            await server.relay.unwatch(bam_id, info.sid)
            return {"bamId": str(bam_id)}
        after = since_seq if since_seq is not None else anchor
        if after is not None:
            replayed = await stream.replay(info.sid, after_seq=after, latest_seq=latest)
        else:
            if info.sid not in stream.upto:
                stream.watch(info.sid, latest)
            replayed = {"missed": 0, "lastSeq": latest}
        if newly:
            bus.room_event(
                bam_id=bam_id,
                event="user-joined-bam",
                data=self.server.member_event(info, bam_id),
                skip_sid=info.sid,
            )
        online = await server.roster.view.room_users(bam_id)
        return {
            "bamId": str(bam_id),
            "onlineUsers": [str(u) for u in online],
            **replayed,
        }

    @client_event(limit="join-bam")
    async def on_leave_bam(self, info: SocketInfo, payload):
        bam_id = _bam_id_of(payload)
        if bam_id not in info.rooms:
            await self._ensure_access(info, bam_id)
        else:
            await self.server.room_leave(info, bam_id, announce=True)
        return {"bamId": str(bam_id)}

    @client_event(limit="send-message")
    async def on_send_message(self, info: SocketInfo, payload):
        if not isinstance(payload, dict):
            raise Invalid(
                "Expected an object "
                "{bamId, content, type?, tempId?, toUserId?, attachmentIds?, "
                "replyToId?}."
            )
        bam_id = _bam_id_of(payload, allow_bare=False)
        draft = message_draft(
            bam_id=bam_id,
            sender=info.user,
            content=message_text_of(payload),
            type=payload.get("type"),
            temp_id=payload.get("tempId"),
            to_user_id=payload.get("toUserId"),
            attachment_ids=payload.get("attachmentIds"),
            reply_to_id=payload.get("replyToId"),
        )
        message = await self.server.writer.store(draft)
        info.access.add(bam_id)
        await self.server.typing.stop(bam_id=bam_id, user_id=info.user_id)
        return {"message": message}

    @client_event(limit="typing")
    async def on_typing_start(self, info: SocketInfo, payload):
        bam_id = _bam_id_of(payload)
        await self._ensure_access(info, bam_id)
        await self.server.typing.start(
            bam_id=bam_id, user_id=info.user_id, username=info.username, sid=info.sid
        )

    @client_event(limit="typing")
    async def on_typing_stop(self, info: SocketInfo, payload):
        bam_id = _bam_id_of(payload)
        await self._ensure_access(info, bam_id)
        await self.server.typing.stop(bam_id=bam_id, user_id=info.user_id)

    @client_event(limit="edit-message")
    async def on_edit_message(self, info: SocketInfo, payload):
        body = _object_of(payload, "{messageId, content}")
        message = await database_sync_to_async(_edit_message)(
            message_id=body.get("messageId"),
            user=info.user,
            content=message_text_of(body),
        )
        return {"message": message}

    @client_event(limit="edit-message")
    async def on_delete_message(self, info: SocketInfo, payload):
        body = _object_of(payload, "{messageId}")
        message = await database_sync_to_async(lifecycle.message_delete)(
            message_id=body.get("messageId"), user=info.user
        )
        return {"messageId": str(message.pk)}

    @client_event(limit="react")
    async def on_react(self, info: SocketInfo, payload):
        body = _object_of(payload, "{messageId, emoji, on?}")
        reactions = await database_sync_to_async(lifecycle.reaction_set)(
            message_id=body.get("messageId"),
            user=info.user,
            emoji=body.get("emoji"),
            on=body.get("on", True),
        )
        return {"reactions": reactions}

    @client_event(limit="mark-read")
    async def on_mark_read(self, info: SocketInfo, payload):
        body = _object_of(payload, "{bamId, messageId}")
        bam_id = _bam_id_of(body, allow_bare=False)
        return await database_sync_to_async(lifecycle.read_mark)(
            bam_id=bam_id, user=info.user, message_id=body.get("messageId")
        )

    @client_event(limit="status-change")
    async def on_status_change(self, info: SocketInfo, payload):
        return {"status": await self.server.presence.set_status(info, payload)}


def _object_of(payload, shape: str) -> dict:
    if not isinstance(payload, dict):
        raise Invalid(f"Expected an object {shape}.")
    return payload


def _edit_message(*, message_id, user, content) -> dict:
    message = lifecycle.message_edit(message_id=message_id, user=user, content=content)
    return message_payload(message)


def now_iso() -> str:
    """The current time as payloads carry it."""
    return iso(timezone.now())
