"""Delivery to this process's sockets: every BAM event once, in ``seq`` order.

Each BAM room with sockets here has a ``BamStream`` that knows, per socket, the
last ``seq`` it was sent. A live event goes to the sockets that are exactly one
behind it; a socket further behind first gets what it lacks from the database
(every lower ``seq`` is committed by then: a ``seq`` is taken under the BAM's
row lock); a socket already past it gets nothing. A replay (``join-bam`` with
``since``/``sinceSeq``) is a job in the same queue, so live delivery, gap fills
and replays of one BAM never interleave and never repeat an event.

The relay receives the bus's messages (``realtime.<kind>`` → ``realtime_<kind>``)
and sends each packet once encoded to all its recipients.
"""

import asyncio
import logging
from collections import deque

from channels.db import database_sync_to_async
from django.conf import settings
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from messaging.selectors import bam_events_between
from realtime import metrics
from realtime.bus import TYPE_PREFIX, bam_group

logger = logging.getLogger(__name__)

# ``join-bam`` replays at most this many events (and REALTIME_REPLAY_MAX_BYTES);
# past it the ack says truncated and the client reads the rest over REST.
REPLAY_LIMIT = 1000
# A replay reads the history this many events at a time, so a long one is never
# held in memory whole.
REPLAY_PAGE = 100
# When processes publish concurrently, a live event may overtake an earlier one
# on the way here; it waits this long for it before the gap is filled from the
# database (one query per gap instead of one per overtaking).
HOLD_BACK_S = 0.1


class BamStream:
    """One BAM room on this process: its sockets and how far each of them got."""

    def __init__(self, relay: "Relay", bam_id: int) -> None:
        self.relay = relay
        self.bam_id = bam_id
        self.upto: dict[str, int | None] = {}  # None: waiting for its replay
        self._jobs: deque = deque()
        self._draining = False
        self._expect: int | None = None  # the next seq due from the bus
        self._held: dict[int, tuple] = {}  # live events that came early
        self._hold_timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return (
            not self.upto and not self._jobs and not self._draining and not self._held
        )

    def watch(self, sid: str, upto: int) -> None:
        """Deliver this BAM's events after ``upto`` to the socket."""
        self.upto[sid] = upto

    def unwatch(self, sid: str) -> None:
        self.upto.pop(sid, None)
        if not self.upto and self._hold_timer is not None:  # no one left to wait for
            self._hold_timer.cancel()
            self._hold_timer = None
            self._held.clear()

    async def offer(self, event: str, data: dict, at: float | None = None) -> None:
        """A live event of this BAM (from the bus), committed at ``at``; one that
        came before an earlier seq waits for it (``HOLD_BACK_S`` at most)."""
        seq = data["seq"]
        if self._expect is not None and seq > self._expect:
            metrics.HELD_EVENTS.inc()
            self._held[seq] = (event, data, at)
            if self._hold_timer is None:
                self._hold_timer = asyncio.get_running_loop().call_later(
                    HOLD_BACK_S, self._stop_holding
                )
            return
        self._jobs.append((self._deliver, (event, data, at)))
        if self._expect is None or seq >= self._expect:
            self._expect = seq + 1
        while self._expect in self._held:  # the early ones now follow in order
            self._jobs.append((self._deliver, self._held.pop(self._expect)))
            self._expect += 1
        if not self._held and self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        await self._drain()

    def _stop_holding(self) -> None:
        """The missing seq did not come (lost on the bus): deliver what waited;
        the sockets' gap is filled from the database on the way."""
        self._hold_timer = None
        metrics.HOLD_TIMEOUTS.inc()
        for seq in sorted(self._held):
            self._jobs.append((self._deliver, self._held[seq]))
            self._expect = seq + 1
        self._held.clear()
        self.relay.server.background(self._drain())

    async def replay(self, sid: str, *, after_seq: int, latest_seq: int) -> dict:
        """Send the socket every event after ``after_seq``, then keep it current."""
        future = asyncio.get_running_loop().create_future()
        self.upto[sid] = None
        self._jobs.append((self._replay, (sid, after_seq, latest_seq, future)))
        await self._drain()
        return await future

    async def _drain(self) -> None:
        if self._draining:
            return  # the task draining now runs this job too, in order
        self._draining = True
        try:
            while self._jobs:
                job, args = self._jobs.popleft()
                try:
                    await job(*args)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("Delivery in BAM %s failed", self.bam_id)
        finally:
            self._draining = False

    async def _deliver(self, event: str, data: dict, at: float | None) -> None:
        seq = data["seq"]
        ready, behind = [], []
        for sid, upto in self.upto.items():
            if upto is None or upto >= seq:
                continue
            (ready if upto == seq - 1 else behind).append(sid)
        if behind:
            await self._fill(behind, seq)
            ready += [
                s
                for s in behind
                if (self.upto.get(s) is not None) and self.upto[s] < seq
            ]
        await self.relay.send(event, data, ready)
        if ready and at is not None:
            metrics.observe_delivery_lag(at)
        for sid in ready:
            if sid in self.upto:
                self.upto[sid] = seq

    async def _fill(self, sids: list[str], before_seq: int) -> None:
        """Send sockets that are behind what they lack before ``before_seq``."""
        low = min(self.upto[s] for s in sids)
        metrics.GAP_FILLS.inc()
        events = await self.relay.history(self.bam_id, after=low, before=before_seq)
        for sid in sids:
            upto = self.upto.get(sid)
            if upto is None:
                continue
            for event, data in events:
                if data["seq"] > upto:
                    await self.relay.send(event, data, [sid])
                    upto = data["seq"]
            if sid in self.upto:
                self.upto[sid] = upto

    async def _replay(self, sid, after_seq, latest_seq, future) -> None:
        try:
            last = min(after_seq, latest_seq)
            budget = settings.REALTIME["REPLAY_MAX_BYTES"]
            sent = sent_bytes = 0
            truncated = False
            while sid in self.upto and not truncated:
                page = await self.relay.history(
                    self.bam_id, after=last, limit=REPLAY_PAGE
                )
                for event, data in page:
                    if sent >= REPLAY_LIMIT or sent_bytes >= budget:
                        truncated = True
                        break
                    sent_bytes += await self.relay.send(event, data, [sid])
                    sent += 1
                    last = data["seq"]
                if len(page) < REPLAY_PAGE:
                    break
            if truncated:
                last = max(last, latest_seq)
            if sid in self.upto:
                self.upto[sid] = last
            result = {"missed": sent, "lastSeq": last}
            if truncated:
                result["truncated"] = True
        except Exception as exc:
            self.upto.pop(sid, None)
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


class Relay:
    """Receives the bus's messages and delivers them to this process's sockets."""

    def __init__(self, server) -> None:
        self.server = server
        self.roster = server.roster
        self.streams: dict[int, BamStream] = {}

    async def dispatch(self, message: dict) -> None:
        """Hand a bus message to the method its ``type`` names."""
        kind = message.get("type")
        handler = None
        if isinstance(kind, str) and kind.startswith(TYPE_PREFIX):
            handler = getattr(self, kind.replace(".", "_"), None)
        if handler is None:
            logger.warning("Ignored a bus message of unknown type %r", kind)
            return
        await handler(message)

    async def realtime_batch(self, message: dict) -> None:
        """Envelopes that travelled together (``bus.batch``), handled in order."""
        for item in message.get("items") or ():
            if isinstance(item, dict) and item.get("type") != message["type"]:
                await self.dispatch(item)

    # -- streams --------------------------------------------------------------------
    async def stream(self, bam_id: int) -> BamStream:
        """This BAM's stream, subscribing the process to its group if new."""
        stream = self.streams.get(bam_id)
        if stream is None:
            stream = self.streams[bam_id] = BamStream(self, bam_id)
            await self.server.manager.subscribe(bam_group(bam_id))
        return stream

    async def unwatch(self, bam_id: int, sid: str) -> None:
        """Stop delivering a BAM to a socket; forget the stream when it empties."""
        stream = self.streams.get(bam_id)
        if stream is None:
            return
        stream.unwatch(sid)
        if stream.idle:
            del self.streams[bam_id]
            await self.server.manager.unsubscribe(bam_group(bam_id))

    def forget_all(self) -> None:
        """Deliver nothing more to anyone here (a stop), without unsubscribing
        group by group: the process's channel goes with it."""
        for stream in self.streams.values():
            for sid in list(stream.upto):
                stream.unwatch(sid)
        self.streams.clear()

    async def history(self, bam_id: int, *, after: int, before=None, limit=None):
        """Stored events of a BAM after ``after`` (and before ``before``), in order."""
        return await database_sync_to_async(bam_events_between)(
            bam_id=bam_id, after_seq=after, before_seq=before, limit=limit
        )

    # -- sending --------------------------------------------------------------------
    async def send(self, event: str, data, sids) -> int:
        """Send one event to local sockets, encoding the packet once; the bytes
        of the packet."""
        if not sids:
            return 0
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace="/", data=[event, data]
        ).encode()
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        local = self.roster.local
        eio = self.server.eio
        sent = 0
        for sid in sids:
            info = local.get(sid)
            if info is not None:
                await eio.send_packet(info.eio_sid, pkt)
                sent += 1
        metrics.emitted.count(event, sent)
        return len(encoded)

    # -- bus messages ---------------------------------------------------------------
    async def realtime_bam_event(self, message: dict) -> None:
        stream = self.streams.get(message["bam"])
        if stream is not None:
            await stream.offer(message["event"], message["data"], message.get("at"))

    async def realtime_room_event(self, message: dict) -> None:
        skip = message.get("skip")
        sids = [s for s in self.roster.rooms.get(message["bam"], ()) if s != skip]
        await self.send(message["event"], message["data"], sids)

    async def realtime_room_events(self, message: dict) -> None:
        sids = list(self.roster.rooms.get(message["bam"], ()))
        for data in message["datas"]:
            await self.send(message["event"], data, sids)

    async def realtime_users_event(self, message: dict) -> None:
        sids = self.roster.user_sids(message["users"], message.get("except_bam"))
        await self.send(message["event"], message["data"], sids)

    async def realtime_users_events(self, message: dict) -> None:
        for users, data in message["items"]:
            await self.send(message["event"], data, self.roster.user_sids(users))

    async def realtime_broadcast(self, message: dict) -> None:
        await self.send(message["event"], message["data"], list(self.roster.local))

    async def realtime_bam_access_revoked(self, message: dict) -> None:
        bam_id = message["bam"]
        for sid in self.roster.user_sids(message["users"]):
            info = self.roster.local.get(sid)
            if info is not None:
                info.access.discard(bam_id)
                info.revoked.add(bam_id)
                await self.server.room_leave(info, bam_id, announce=False)

    async def realtime_users_disconnect(self, message: dict) -> None:
        for sid in self.roster.user_sids(message["users"]):
            await self.server.disconnect(sid, ignore_queue=True)

    async def realtime_sockets_disconnect(self, message: dict) -> None:
        for sid in message["sids"]:
            if sid in self.roster.local:
                await self.server.disconnect(sid, ignore_queue=True)
