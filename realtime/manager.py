"""Socket.IO client manager that publishes and listens through the Channels layer.

One setting, ``CHANNEL_LAYERS``, governs all realtime traffic: in-memory for one
process, channels-redis for many. Each process owns one layer channel. It is in
the global group (broadcasts, user-addressed events, disconnects) and, while it
has local sockets in a BAM room, in that BAM's group, so a BAM event reaches only
processes that have someone to deliver it to.
"""

import asyncio
import logging

from channels.layers import InMemoryChannelLayer, get_channel_layer
from engineio import packet as eio_packet
from socketio import packet as sio_packet
from socketio.async_pubsub_manager import AsyncPubSubManager

from realtime.events import (
    GLOBAL_GROUP,
    LAYER_MESSAGE_TYPE,
    NAMESPACE,
    is_bam_room,
    user_room,
)

logger = logging.getLogger(__name__)

# Back-off between reconnect attempts to an unreachable layer (seconds).
LISTEN_RETRY_S = (0.2, 0.5, 1, 2, 3)


class ChannelLayerManager(AsyncPubSubManager):
    """AsyncPubSubManager whose pub/sub backend is the Channels channel layer."""

    name = "channel-layer"

    def __init__(self, *, alias: str = "default", write_only: bool = False):
        super().__init__(channel=GLOBAL_GROUP, write_only=write_only, logger=logger)
        self.alias = alias
        self.channel_name: str | None = None
        self.layer_down = False
        self.listener_running = False
        self.listener_restarts = 0
        self._groups: set[str] = set()
        self._group_locks: dict[str, asyncio.Lock] = {}
        # room -> {sid: [new-message payloads held while that socket replays history]}
        self._replaying: dict[str, dict[str, list]] = {}
        # room -> sequence number of the last message delivered to it here
        self._room_seq: dict[str, int] = {}

    # -- publishing -------------------------------------------------------------------
    def _layer(self):
        return get_channel_layer(self.alias)

    @property
    def _in_memory(self) -> bool:
        return isinstance(self._layer(), InMemoryChannelLayer)

    async def _publish(self, data):
        if self._in_memory:
            # An in-memory layer lives in this process only: the local handling
            # in emit() already delivered it, and no other process can listen.
            return
        room = data.get("room")
        group = (
            room if data.get("method") == "emit" and is_bam_room(room) else GLOBAL_GROUP
        )
        try:
            await self._layer().group_send(group, {"type": LAYER_MESSAGE_TYPE, **data})
        except Exception as exc:
            self._mark_down(exc)

    # -- listening --------------------------------------------------------------------
    async def _thread(self):
        """Run the listener for the life of the process; restart it if it stops."""
        while True:
            self.listener_running = True
            try:
                await super()._thread()
            except asyncio.CancelledError:
                self.listener_running = False
                raise
            except Exception:
                logger.exception("Realtime listener crashed")
            self.listener_running = False
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return
            self.listener_restarts += 1
            logger.error(
                "Realtime listener stopped; restarting it (restart #%d)",
                self.listener_restarts,
            )
            await asyncio.sleep(LISTEN_RETRY_S[0])

    async def _listen(self):
        layer = self._layer()
        attempt = 0
        while True:
            try:
                if self.channel_name is None:
                    self.channel_name = await layer.new_channel(prefix="realtime")
                    self._groups.clear()
                if self.layer_down or GLOBAL_GROUP not in self._groups:
                    await self.resubscribe()
                message = await layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._mark_down(exc)
                await asyncio.sleep(
                    LISTEN_RETRY_S[min(attempt, len(LISTEN_RETRY_S) - 1)]
                )
                attempt += 1
                continue
            attempt = 0
            self._mark_up()
            if not isinstance(message, dict):
                continue
            method = message.get("method")
            handler = self._local_methods.get(method)
            if handler is None:
                yield message
                continue
            try:
                await handler(self, message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Bad realtime message %r", method)

    def _mark_down(self, exc: BaseException) -> None:
        if not self.layer_down:
            self.layer_down = True
            logger.error(
                "Channel layer unreachable: %s; realtime paused, retrying", exc
            )

    def _mark_up(self) -> None:
        if self.layer_down:
            self.layer_down = False
            logger.warning("Channel layer reachable again; realtime resumed")

    async def resubscribe(self) -> None:
        """(Re)join the global group and every BAM group this process has sockets in."""
        layer = self._layer()
        wanted = {GLOBAL_GROUP} | {
            room for room in self.rooms.get(NAMESPACE, {}) if is_bam_room(room)
        }
        for group in wanted:
            await layer.group_add(group, self.channel_name)
        self._groups = wanted

    # -- BAM room groups --------------------------------------------------------------
    async def _sync_group(self, room: str) -> None:
        """Be in a BAM's group exactly while a local socket is in its room."""
        if not is_bam_room(room) or self.channel_name is None:
            return
        lock = self._group_locks.setdefault(room, asyncio.Lock())
        async with lock:
            wanted = room in self.rooms.get(NAMESPACE, {})
            if wanted == (room in self._groups):
                if not wanted:
                    self._group_locks.pop(room, None)
                return
            layer = self._layer()
            try:
                if wanted:
                    await layer.group_add(room, self.channel_name)
                    self._groups.add(room)
                else:
                    self._room_seq.pop(room, None)
                    await layer.group_discard(room, self.channel_name)
                    self._groups.discard(room)
                    self._group_locks.pop(room, None)
            except Exception as exc:
                self._mark_down(exc)

    async def enter_room(self, sid, namespace, room, eio_sid=None):
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        await self._sync_group(room)

    async def leave_room(self, sid, namespace, room):
        await super().leave_room(sid, namespace, room)
        self._replay_drop(sid, room)
        await self._sync_group(room)

    async def disconnect(self, sid, namespace, **kwargs):
        rooms = [
            r for r in self.get_rooms(sid, namespace or NAMESPACE) if is_bam_room(r)
        ]
        await super().disconnect(sid, namespace, **kwargs)
        for room in rooms:
            self._replay_drop(sid, room)
            await self._sync_group(room)

    # -- local delivery ---------------------------------------------------------------
    async def _handle_emit(self, message):
        room = message.get("room")
        if message.get("event") == "new-message" and is_bam_room(room):
            await self._deliver_in_order(message, room)
            return
        await self._emit_local(message)

    async def _deliver_in_order(self, message, room: str) -> None:
        """Deliver BAM messages to local sockets once each, in sequence order.

        Processes publish after their own commit, so two messages written on two
        processes can arrive in either order. A message's sequence number is taken
        under the BAM's row lock, so when seq N arrives every earlier one is already
        committed: a gap is filled from the database at once, and the late copy is
        dropped when it comes.
        """
        payload = message["data"][0]
        seq = payload.get("seq") if isinstance(payload, dict) else None
        if not isinstance(seq, int) or room not in self.rooms.get(NAMESPACE, {}):
            await self._emit_held_aware(message, room)
            return
        last = self._room_seq.get(room)
        if last is not None and seq <= last:
            return
        if last is not None and seq > last + 1:
            for missing in await self._fetch_gap(room, last, seq):
                await self._emit_held_aware({**message, "data": [missing]}, room)
        self._room_seq[room] = seq
        await self._emit_held_aware(message, room)

    def room_seq_init(self, room: str, last_seq: int) -> None:
        """Start ordering a room that has no local sockets yet after ``last_seq``."""
        self._room_seq.setdefault(room, last_seq)

    async def _fetch_gap(self, room: str, after_seq: int, before_seq: int) -> list:
        from channels.db import database_sync_to_async

        from realtime.selectors import message_payloads_between

        try:
            return await database_sync_to_async(message_payloads_between)(
                bam_id=int(room.removeprefix("bam-")),
                after_seq=after_seq,
                before_seq=before_seq,
            )
        except Exception:
            logger.exception("Could not fill message gap in %s", room)
            return []

    async def _emit_held_aware(self, message, room: str) -> None:
        holding = self._replaying.get(room)
        if holding:
            skip = message.get("skip_sid")
            skip = list(skip) if isinstance(skip, list) else ([skip] if skip else [])
            for sid, held in holding.items():
                held.append(message["data"][0])
                skip.append(sid)
            message = {**message, "skip_sid": skip}
        await self._emit_local(message)

    async def _emit_local(self, message) -> None:
        """Emit a pub/sub ``emit`` message to this process's sockets.

        The packet is encoded once and queued on each recipient's socket in turn,
        without a task per recipient. Acks and binary attachments, which need the
        library's per-recipient handling, take its path.
        """
        if message.get("callback") or message.get("binary"):
            await super()._handle_emit(message)
            return
        namespace = message.get("namespace") or NAMESPACE
        skip = message.get("skip_sid")
        skip = set(skip) if isinstance(skip, list) else {skip}
        targets = [
            eio_sid
            for sid, eio_sid in self.get_participants(namespace, message.get("room"))
            if sid not in skip
        ]
        await self._send_to(message["event"], message["data"], targets, namespace)

    async def _send_to(self, event: str, args: list, eio_sids, namespace=NAMESPACE):
        if not eio_sids:
            return
        pkt = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        )
        encoded = pkt.encode()
        encoded = encoded if isinstance(encoded, list) else [encoded]
        eio_pkts = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded]
        for eio_sid in eio_sids:
            for p in eio_pkts:
                try:
                    await self.server._send_eio_packet(eio_sid, p)
                except Exception:  # the socket went away meanwhile
                    logger.debug("Dropped a packet for a closed socket %s", eio_sid)

    async def send_local(self, event: str, data, sids) -> None:
        """Send one event to local sockets, encoding it once."""
        targets = [self.eio_sid_from_sid(sid, NAMESPACE) for sid in sids]
        await self._send_to(event, [data], [t for t in targets if t is not None])

    def local_user_sids(self, user_ids, except_room: str | None = None) -> list[str]:
        """Local sockets of the given users, leaving out those in ``except_room``."""
        rooms = self.rooms.get(NAMESPACE, {})
        excluded = rooms.get(except_room, {}) if except_room else {}
        sids = []
        for uid in user_ids:
            for sid in rooms.get(user_room(uid), {}):
                if sid not in excluded:
                    sids.append(sid)
        return sids

    async def _emit_users(self, message):
        sids = self.local_user_sids(
            message.get("user_ids") or [], message.get("except_room")
        )
        await self.send_local(message["event"], message.get("data"), sids)

    async def _bam_evict(self, message):
        room = message["room"]
        for sid in self.local_user_sids(message.get("user_ids") or []):
            if room in self.get_rooms(sid, NAMESPACE):
                await self.server.leave_room(sid, room)
                await self.server.evicted(sid, room)

    async def _disconnect_users(self, message):
        for sid in self.local_user_sids(message.get("user_ids") or []):
            await self.server.disconnect(sid, ignore_queue=True)

    async def _disconnect_sids(self, message):
        for sid in message.get("sids") or []:
            if self.is_connected(sid, NAMESPACE):
                await self.server.disconnect(sid, ignore_queue=True)

    _local_methods = {
        "emit_users": _emit_users,
        "bam_evict": _bam_evict,
        "disconnect_users": _disconnect_users,
        "disconnect_sids": _disconnect_sids,
    }

    # -- history replay on join -------------------------------------------------------
    def replay_begin(self, sid: str, room: str) -> None:
        """Hold live ``new-message``s for this socket while its history replays."""
        self._replaying.setdefault(room, {})[sid] = []

    async def replay_end(self, sid: str, room: str, last_seq: int) -> int:
        """Send held events newer than the replayed history, in order; count them."""
        held = self._replay_drop(sid, room) or []
        fresh = sorted(
            (p for p in held if int(p.get("seq", 0)) > last_seq),
            key=lambda p: int(p["seq"]),
        )
        for payload in fresh:
            await self.send_local("new-message", payload, [sid])
        return len(fresh)

    def replay_cancel(self, sid: str, room: str) -> None:
        """Stop holding events for this socket (its join failed or finished)."""
        self._replay_drop(sid, room)

    def _replay_drop(self, sid: str, room: str) -> list | None:
        holding = self._replaying.get(room)
        if not holding:
            return None
        held = holding.pop(sid, None)
        if not holding:
            self._replaying.pop(room, None)
        return held
