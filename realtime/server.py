"""This process's Socket.IO server: engine settings, protocol refusals, rooms."""

import asyncio
import logging

import socketio
from channels.db import database_sync_to_async
from django.conf import settings
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from accounts.tokens import TOKEN_USERS_BATCH
from messaging.selectors import bam_join_points
from messaging.statements import IN_LIST_SIZE
from realtime import bus, metrics
from realtime.auth import identities_for
from realtime.batching import Batcher
from realtime.delivery import Relay
from realtime.engine import EngineServer
from realtime.heartbeat import HandshakeJson, heartbeat_ms
from realtime.manager import ChannelLayerManager
from realtime.namespace import BamNamespace, error_ack, now_iso
from realtime.packet import JsonPacket
from realtime.presence import PresenceKeeper
from realtime.process import ProcessLife
from realtime.ratelimit import RateLimiter
from realtime.roster import Roster
from realtime.typing import TypingTracker
from realtime.writer import MessageWriter

logger = logging.getLogger(__name__)

# Names the library gives its own meaning: a client may not send them as events.
# (``message`` is not one: what ``socket.send()`` emits is an event like any
# other, refused as unknown by the namespace.)
RESERVED_EVENTS = frozenset(
    {"connect", "disconnect", "connect_error", "__disconnect_final", "*"}
)
BINARY_PACKETS = (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK)


class BamSocketServer(socketio.AsyncServer):
    """AsyncServer with the contract's namespace, this process's roster and relay."""

    def __init__(self) -> None:
        realtime = settings.REALTIME
        super().__init__(
            async_mode="asgi",
            client_manager=ChannelLayerManager(),
            serializer=JsonPacket,
            cors_allowed_origins=settings.CORS_ALLOWED_ORIGINS or None,
            max_http_buffer_size=realtime["MAX_PAYLOAD_BYTES"],
            # Each event is a task, so a socket's reader never waits for a
            # handler (pongs keep flowing); BamNamespace runs one socket's
            # events one at a time, in order.
            async_handlers=True,
            ping_interval=realtime["PING_INTERVAL_S"],
            ping_timeout=realtime["PING_TIMEOUT_S"],
            json=HandshakeJson(
                interval_ms=heartbeat_ms(
                    realtime["PING_INTERVAL_S"], setting="REALTIME_PING_INTERVAL_S"
                ),
                timeout_ms=heartbeat_ms(
                    realtime["PING_TIMEOUT_S"], setting="REALTIME_PING_TIMEOUT_S"
                ),
            ),
            logger=False,
            engineio_logger=False,
        )
        self.process = ProcessLife(self)
        self.roster = Roster(self.process.id)
        self.presence = PresenceKeeper(self.roster)
        self.relay = Relay(self)
        self.manager.relay = self.relay
        self.limiter = RateLimiter()
        self.typing = TypingTracker(self)
        self.writer = MessageWriter()
        # Handshakes' token checks and joins' membership reads: what arrives
        # together shares one query.
        self.handshakes = Batcher(
            database_sync_to_async(identities_for), max_batch=TOKEN_USERS_BATCH
        )
        self.joins = Batcher(
            database_sync_to_async(bam_join_points), max_batch=IN_LIST_SIZE
        )
        self._background: set[asyncio.Task] = set()
        self.register_namespace(BamNamespace("/"))

    def _engineio_server_class(self):
        """The engine whose sockets queue their packets in ``PacketQueue``
        (``realtime.engine`` says why this is the one way to choose it)."""
        return EngineServer

    def background(self, coro) -> asyncio.Task:
        """Run a coroutine as a task this server keeps a reference to until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- what a client may send -----------------------------------------------------
    async def _handle_eio_message(self, eio_sid, data):
        """Refuse what the contract does not have before the library sees it.

        python-socketio dispatches a client event named ``connect`` or
        ``disconnect`` to the lifecycle handlers, buffers binary attachments
        for as long as the client announces, and only logs a packet it cannot
        decode; it has no setting for any of these, so this override of its
        message hook is the one place that decides.
        """
        if not isinstance(data, str):
            return  # a binary frame: the contract has none; dropped unread
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:
            logger.info("Closed a socket that sent an undecodable packet")
            await self._end_transport(eio_sid, reconnect=False)
            return
        if pkt.packet_type in BINARY_PACKETS:
            await self._refuse(eio_sid, pkt, "Binary payloads are not supported.")
            return
        if pkt.packet_type == sio_packet.EVENT and (
            not isinstance(pkt.data, list)
            or not pkt.data
            or not isinstance(pkt.data[0], str)
            or pkt.data[0] in RESERVED_EVENTS
        ):
            await self._refuse(eio_sid, pkt, "This event name is reserved.")
            return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_eio_disconnect(self, eio_sid, reason):
        """Let a long-polling client that said goodbye go at once.

        Its close packet arrives by POST while its GET waits for packets; the
        reference server answers that GET with a close packet, python-engineio
        leaves it open until the heartbeat gives up (ping interval + timeout),
        holding the request, and python-socketio's client, whose
        ``disconnect()`` waits for that GET, for 30 s. The library has no
        setting for it; this override of its disconnect hook answers the GET.
        """
        await super()._handle_eio_disconnect(eio_sid, reason)
        if reason == self.eio.reason.CLIENT_DISCONNECT:
            sock = self.eio.sockets.get(eio_sid)
            if sock is not None and not sock.upgraded:
                sock.queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))

    async def _refuse(self, eio_sid, pkt, message: str) -> None:
        if pkt.packet_type == sio_packet.BINARY_ACK:
            return
        metrics.received.count_refused()
        if pkt.id is None:
            return
        ack = self.packet_class(
            sio_packet.ACK,
            namespace=pkt.namespace,
            id=pkt.id,
            data=[error_ack("invalid", message)],
        )
        await self.eio.send(eio_sid, ack.encode())

    # -- rooms ----------------------------------------------------------------------
    def member_event(self, info, bam_id: int) -> dict:
        """The payload of ``user-joined-bam`` / ``user-left-bam``."""
        return {
            "bamId": str(bam_id),
            "userId": str(info.user_id),
            "username": info.username,
            "at": now_iso(),
        }

    async def room_leave(self, info, bam_id: int, *, announce: bool) -> None:
        """Take a socket out of a BAM's room (typing stops; the room may be told)."""
        await self.typing.stop(bam_id=bam_id, user_id=info.user_id)
        await self.relay.unwatch(bam_id, info.sid)
        if await self.roster.leave(info, bam_id) and announce:
            bus.room_event(
                bam_id=bam_id,
                event="user-left-bam",
                data=self.member_event(info, bam_id),
            )

    async def release_all(self) -> list:
        """Take every local socket out of its rooms and the roster at once (a
        stop), announcing each room it leaves only once all are out, so none of
        those events comes back to sockets of this process; returns their
        records. Their transports stay open until ``drop_transports``."""
        infos = list(self.roster.local.values())
        left: dict[int, list[dict]] = {}
        self.relay.forget_all()
        for info in infos:
            info.gone = True
            for bam_id in list(info.rooms):
                await self.typing.stop(bam_id=bam_id, user_id=info.user_id)
                if await self.roster.leave(info, bam_id):
                    left.setdefault(bam_id, []).append(self.member_event(info, bam_id))
        for info in infos:
            await self.presence.disconnected(info.sid, check_later=False)
        for bam_id, datas in left.items():
            bus.room_events(bam_id=bam_id, event="user-left-bam", datas=datas)
        return infos

    async def drop_transports(self, eio_sids) -> None:
        """Close these sockets' transports as a dying server would, so they
        reconnect (elsewhere)."""
        for eio_sid in eio_sids:
            await self._end_transport(eio_sid, reconnect=True)

    async def _end_transport(self, eio_sid: str, *, reconnect: bool) -> None:
        """End an Engine.IO socket and its transport now.

        Engine.IO's ``disconnect`` sends a close packet (which also tells the
        client not to come back) and leaves the WebSocket open until the client
        closes it. A stopping process wants clients back, elsewhere; a hostile
        client gets no say. There is no public call for either, so this one
        place closes the socket (with the close packet only when the client
        must not reconnect) and ends its writer, which closes the transport.
        """
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        await sock.close(wait=False, abort=reconnect)
        sock.queue.put_nowait(None)

    def health(self) -> dict:
        """Liveness of this process's realtime machinery."""
        manager = self.manager
        return {
            "process": self.process.id,
            "heartbeat": self.process.running,
            "stopping": self.process.draining,
            "heartbeatError": self.process.last_error,
            "listener": bool(manager.listener_running),
            "listenerRestarts": manager.listener_restarts,
            "layerDown": bus.layer_health.down,
            "sockets": len(self.roster.local),
        }


sio = BamSocketServer()
metrics.register_server(sio)
