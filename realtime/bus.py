"""The one way realtime events leave a process: typed messages on the channel layer.

Signal receivers (after commit), socket handlers and staff views say what
happened with the functions at the bottom of this module; the bus builds the
envelope, picks the group and sends it from the server's event loop, never
blocking the caller. Every process's client manager receives it and hands it to
that process's relay, channels-style: ``{"type": "realtime.bam_event"}`` is
handled by ``Relay.realtime_bam_event``.

BAM events go to the BAM's group, which a process joins only while it has
sockets in that BAM; everything else goes to the global group. On the in-memory
layer (one process) the relay gets the message directly, without a layer hop.
"""

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from realtime.metrics import BUS_PUBLISH_FAILURES

logger = logging.getLogger(__name__)

GLOBAL_GROUP = "realtime"
TYPE_PREFIX = "realtime."
# How long a staff call waits to learn whether the layer took its event.
CONFIRM_TIMEOUT_S = 3
# At most this many envelopes of one group travel in one layer message.
BATCH_MAX = 200


def bam_group(bam_id) -> str:
    """The channel-layer group of one BAM's events."""
    return f"bam-{bam_id}"


class LayerHealth:
    """Whether the channel layer answered the last call this process made to it:
    one flag, and one pair of log lines per outage, for every user of the layer
    (the bus publishing, the client manager listening and subscribing)."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error(
                "Channel layer unreachable: %s; live events are dropped until it "
                "returns (clients catch up from the database), retrying",
                exc,
            )

    def recovered(self) -> None:
        if self.down:
            self.down = False
            logger.warning("Channel layer reachable again; realtime resumed")


layer_health = LayerHealth()


class Bus:
    """Sends envelopes from the server's loop, in the order they were submitted
    within each group (a BAM's events in seq order).

    Each group has its own lane, so one publish round trip to Redis waits for
    the previous one of the same group only: with many BAMs busy at once the
    round trips overlap instead of queueing behind each other. What queued in a
    lane while its previous publish was under way leaves as one ``realtime.batch``
    message (group commit): after a Redis stall, a lane's backlog costs a few
    round trips, not one per event.

    On a layer with ``group_send_many`` (ours on Redis, ``realtime.layer``) there
    are no lanes: everything queued, for every group, leaves in one call, one
    Redis round trip, and the next call starts when it returns.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.deliver_local: Callable[[dict], Awaitable[None]] | None = None
        self.local_only = False
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._lanes: dict[str, deque] = {}
        self._lane_tasks: set[asyncio.Task] = set()
        self._in_flight = 0
        self.pipelined = False

    def start(self, deliver_local: Callable[[dict], Awaitable[None]]) -> None:
        """Send from the running loop; ``deliver_local`` is this process's relay."""
        self.loop = asyncio.get_running_loop()
        self.deliver_local = deliver_local
        layer = get_channel_layer()
        self.local_only = isinstance(layer, InMemoryChannelLayer)
        self.pipelined = "group_send_many" in getattr(layer, "extensions", ())
        self._queue = asyncio.Queue()
        run = self._run_pipelined() if self.pipelined else self._run()
        self._task = self.loop.create_task(run, name="realtime-bus")

    async def stop(self) -> None:
        """Send what is queued (briefly), then stop sending."""
        if self._task is None:
            return
        if self._queue is not None and self.unsent:
            try:
                await asyncio.wait_for(self._queue.join(), 1)
            except TimeoutError:
                logger.warning("Dropped %d unsent events at stop", self.unsent)
        tasks = [self._task, *self._lane_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._lanes.clear()

    @property
    def unsent(self) -> int:
        """Envelopes submitted and not yet handed to the layer (queued or in a lane)."""
        queued = self._queue.qsize() if self._queue is not None else 0
        lanes = sum(len(lane) for lane in self._lanes.values())
        return queued + lanes + self._in_flight

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def send(self, group: str, message: dict) -> None:
        """Queue one envelope from any thread; returns at once, never raises."""
        if self.running:
            assert self.loop is not None and self._queue is not None
            self.loop.call_soon_threadsafe(self._queue.put_nowait, (group, message))
            return
        # No server loop in this process (a management command, a shell): no
        # local sockets to reach, so only other processes can be told.
        if self.loop is None and not isinstance(
            get_channel_layer(), InMemoryChannelLayer
        ):
            self._send_outside_server(group, message)

    def send_confirmed(self, group: str, message: dict) -> bool:
        """Send from a worker thread and wait to learn whether the layer took it."""
        if not self.running:
            return self._send_outside_server(group, message)
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(self._put(group, message), self.loop)
        try:
            return future.result(CONFIRM_TIMEOUT_S)
        except (concurrent.futures.TimeoutError, Exception):
            return False

    def _send_outside_server(self, group: str, message: dict) -> bool:
        try:
            async_to_sync(get_channel_layer().group_send)(group, message)
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    async def _put(self, group: str, message: dict) -> bool:
        try:
            if self.local_only:
                await self.deliver_local(message)
            else:
                await get_channel_layer().group_send(group, message)
        except Exception as exc:
            self._failed(exc, events=len(message.get("items") or ()) or 1)
            return False
        self._recovered()
        return True

    async def _run(self) -> None:
        assert self._queue is not None and self.loop is not None
        while True:
            group, message = await self._queue.get()
            lane = self._lanes.get(group)
            if lane is not None:
                lane.append(message)
                continue
            lane = self._lanes[group] = deque([message])
            task = self.loop.create_task(self._send_lane(group, lane))
            self._lane_tasks.add(task)
            task.add_done_callback(self._lane_tasks.discard)

    async def _run_pipelined(self) -> None:
        """Everything queued, every group at once, in one ``group_send_many`` (one
        Redis round trip); the next call starts when it returns, so each group's
        envelopes stay in order and what queues meanwhile leaves together."""
        assert self._queue is not None
        layer = get_channel_layer()
        while True:
            waiting = [await self._queue.get()]
            while not self._queue.empty():
                waiting.append(self._queue.get_nowait())
            self._in_flight = len(waiting)
            try:
                await layer.group_send_many(batches(waiting))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc, events=len(waiting))
            else:
                self._recovered()
            finally:
                self._in_flight = 0
                for _ in waiting:
                    self._queue.task_done()

    async def _send_lane(self, group: str, lane: deque) -> None:
        assert self._queue is not None
        try:
            while lane:
                most = 1 if self.local_only else BATCH_MAX
                items = [lane.popleft() for _ in range(min(len(lane), most))]
                self._in_flight += len(items)
                message = items[0] if len(items) == 1 else batch(items)
                try:
                    await self._put(group, message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("Could not deliver %s", message.get("type"))
                finally:
                    self._in_flight -= len(items)
                    for _ in items:
                        self._queue.task_done()
        finally:
            if not lane and self._lanes.get(group) is lane:
                del self._lanes[group]

    def _failed(self, exc: BaseException, *, events: int = 1) -> None:
        BUS_PUBLISH_FAILURES.inc(events)
        layer_health.failed(exc)

    def _recovered(self) -> None:
        layer_health.recovered()


bus = Bus()


def _envelope(kind: str, **fields) -> dict:
    return {"type": TYPE_PREFIX + kind, **fields}


def batch(items: list[dict]) -> dict:
    """Several envelopes of one group in one layer message, in order."""
    return _envelope("batch", items=items)


def batches(waiting: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """``(group, envelope)`` pairs as layer messages: each group's envelopes in
    order, at most ``BATCH_MAX`` to a message."""
    lanes: dict[str, list[dict]] = {}
    for group, message in waiting:
        lanes.setdefault(group, []).append(message)
    out = []
    for group, messages in lanes.items():
        for start in range(0, len(messages), BATCH_MAX):
            chunk = messages[start : start + BATCH_MAX]
            out.append((group, chunk[0] if len(chunk) == 1 else batch(chunk)))
    return out


# -- what can be said ------------------------------------------------------------------
def bam_event(*, bam_id: int, event: str, data: dict) -> None:
    """A sequence-numbered BAM event (``data["seq"]``): delivered in order, once."""
    # Told after commit: ``at`` (wall-clock seconds, comparable across processes)
    # is its commit time, from which each process measures its delivery lag.
    message = _envelope("bam_event", bam=bam_id, event=event, data=data, at=time.time())
    bus.send(bam_group(bam_id), message)


def room_event(*, bam_id: int, event: str, data: dict, skip_sid: str = "") -> None:
    """A passing BAM event (typing, joins, leaves) for the sockets in its room now."""
    bus.send(
        bam_group(bam_id),
        _envelope("room_event", bam=bam_id, event=event, data=data, skip=skip_sid),
    )


def room_events(*, bam_id: int, event: str, datas: list) -> None:
    """Many passing events of one name for a BAM's room, in one envelope (the
    leaves of a stopping process's sockets)."""
    bus.send(
        bam_group(bam_id),
        _envelope("room_events", bam=bam_id, event=event, datas=datas),
    )


def users_event(
    *, user_ids, event: str, data, except_bam: int | None = None, confirm=False
) -> bool:
    """An event for every socket of some users (leaving out sockets in a BAM's room)."""
    message = _envelope(
        "users_event",
        users=[int(u) for u in user_ids],
        event=event,
        data=data,
        except_bam=except_bam,
    )
    if confirm:
        return bus.send_confirmed(GLOBAL_GROUP, message)
    bus.send(GLOBAL_GROUP, message)
    return True


def users_events(*, event: str, items) -> None:
    """Many ``users_event``s of one name in one envelope: ``items`` are
    ``(user_ids, data)`` (a batch of presence changes: a storm or a stop)."""
    bus.send(
        GLOBAL_GROUP,
        _envelope(
            "users_events",
            event=event,
            items=[([int(u) for u in users], data) for users, data in items],
        ),
    )


def broadcast(*, event: str, data) -> bool:
    """An event for every connected socket; says whether the layer took it."""
    return bus.send_confirmed(
        GLOBAL_GROUP, _envelope("broadcast", event=event, data=data)
    )


def bam_access_revoked(*, bam_id: int, user_ids) -> None:
    """These users lost a BAM: their sockets leave its room and forget its access."""
    bus.send(
        GLOBAL_GROUP,
        _envelope("bam_access_revoked", bam=bam_id, users=[int(u) for u in user_ids]),
    )


def users_disconnect(*, user_ids) -> None:
    """Disconnect every socket of these users, on every process."""
    bus.send(
        GLOBAL_GROUP, _envelope("users_disconnect", users=[int(u) for u in user_ids])
    )


def sockets_disconnect(*, sids) -> None:
    """Disconnect these sockets, wherever they are."""
    bus.send(GLOBAL_GROUP, _envelope("sockets_disconnect", sids=list(sids)))
