"""Socket.IO client manager whose pub/sub backend is the Channels channel layer.

It only carries messages: each process owns one layer channel, in the global
group and in the group of each BAM it has sockets in. Messages of our bus
(``realtime.*``) go to the process's relay; the library's own (its ``method``
messages) go to python-socketio's handling. Ordering, replay and every domain
rule live in ``realtime.delivery``.
"""

import asyncio
import logging

from channels.layers import InMemoryChannelLayer, get_channel_layer
from socketio.async_pubsub_manager import AsyncPubSubManager

from realtime.bus import GLOBAL_GROUP, TYPE_PREFIX, layer_health
from realtime.metrics import MANAGER_PUBLISH_FAILURES

logger = logging.getLogger(__name__)

# Back-off between reconnect attempts to an unreachable layer (seconds).
LISTEN_RETRY_S = (0.2, 0.5, 1, 2, 3)


class ChannelLayerManager(AsyncPubSubManager):
    """AsyncPubSubManager over the channel layer, with supervision and groups."""

    name = "channel-layer"

    def __init__(self, *, alias: str = "default"):
        super().__init__(channel=GLOBAL_GROUP, logger=logger)
        self.alias = alias
        self.channel_name: str | None = None
        self.relay = None  # set by the server: receives bus messages
        self.resubscribe_needed = False  # a call to the layer failed since
        self.listener_running = False
        self.listener_restarts = 0
        self.groups: set[str] = set()

    def _layer(self):
        return get_channel_layer(self.alias)

    async def _publish(self, data):
        if isinstance(self._layer(), InMemoryChannelLayer):
            return  # one process: the library already handled it here
        try:
            await self._layer().group_send(
                GLOBAL_GROUP, {"type": "socketio.message", **data}
            )
        except Exception as exc:
            MANAGER_PUBLISH_FAILURES.inc()
            self._mark_down(exc)

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
                    self.groups.clear()
                if self.resubscribe_needed or GLOBAL_GROUP not in self.groups:
                    await self.resubscribe()
                    self.resubscribe_needed = False
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
            kind = message.get("type", "") if isinstance(message, dict) else ""
            if kind.startswith(TYPE_PREFIX):
                if self.relay is not None:
                    try:
                        await self.relay.dispatch(message)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        logger.exception("Bad realtime message %r", kind)
                continue
            yield message

    def _mark_down(self, exc: BaseException) -> None:
        self.resubscribe_needed = True  # a group_add may have been lost
        layer_health.failed(exc)

    @staticmethod
    def _mark_up() -> None:
        layer_health.recovered()

    def basic_disconnect(self, sid, namespace, **kwargs):
        """Forget a socket, in time that does not grow with the other sockets.

        python-socketio's own looks for the socket in a copy of every room of
        the namespace, and each socket has a room of its own: thousands of
        disconnects at once (a stop, a network blip) cost time quadratic in the
        sockets, seconds at 3,000. This server puts no socket in a room of the
        library's (BAM rooms are ours, ``realtime.roster``), so a socket is only
        in its own two, ``None`` and its sid; the rest is the library's.
        """
        rooms = self.rooms.get(namespace)
        if rooms is not None:
            for room in (None, sid):
                if room in rooms and sid in rooms[room]:
                    self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    # -- groups ---------------------------------------------------------------------
    async def subscribe(self, group: str) -> None:
        """Receive a group's messages (a BAM this process now has sockets in)."""
        self.groups.add(group)
        if self.channel_name is None:
            return  # the listener subscribes to every wanted group when it starts
        try:
            await self._layer().group_add(group, self.channel_name)
        except Exception as exc:
            self._mark_down(exc)

    async def unsubscribe(self, group: str) -> None:
        """Stop receiving a group's messages."""
        self.groups.discard(group)
        if self.channel_name is None:
            return
        try:
            await self._layer().group_discard(group, self.channel_name)
        except Exception as exc:
            self._mark_down(exc)

    async def resubscribe(self) -> None:
        """(Re)join the global group and every group this process wants."""
        layer = self._layer()
        wanted = self.groups | {GLOBAL_GROUP}
        for group in wanted:
            await layer.group_add(group, self.channel_name)
        self.groups = wanted

    async def ensure_channel(self) -> None:
        """Own a layer channel in the global group before the first socket joins."""
        if self.channel_name is not None:
            return
        try:
            self.channel_name = await self._layer().new_channel(prefix="realtime")
            await self.resubscribe()
        except Exception as exc:
            self._mark_down(exc)
