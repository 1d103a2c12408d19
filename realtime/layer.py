"""BAM Chat's Redis channel layer: pub/sub, with many group sends in one round trip.

What it replaces, channels-redis's ``RedisPubSubChannelLayer``, uses Redis the
same way (a group is a Redis pub/sub channel; nothing is stored in Redis) but
was most of what PostgreSQL + Redis cost beyond SQLite per delivered message in
a chat run (README, "Thousands of sockets at once"):

- it publishes one message per round trip, behind a lock that subscribing
  shares, so the bus's per-BAM lanes could not overlap their publishes;
- its reader takes each message through redis-py's ``PubSub.get_message`` with a
  0.1 s timeout: one await, one timeout and redis-py's per-command bookkeeping
  for every message.

This layer keeps the channel-layer API the client manager speaks (``new_channel``,
``receive``, ``send``, the ``groups`` and ``flush`` extensions) and adds
``group_send_many``: every ``(group, message)`` written at once, one round trip.
It holds two connections per process, one that publishes and one that
subscribes, spoken to directly (``realtime.redispubsub``: commands in Redis's
wire form, replies parsed in chunks by hiredis). Messages are msgpack, as in
channels-redis.

Redis's pub/sub ignores the database number of the URL, so two deployments
on one Redis server, each with its database (``/0``, ``/1``), would hear each
other's groups. The channels of a layer on database N > 0 start with
``asgi:dbN`` instead of ``asgi`` (database 0 keeps channels-redis's names).

Publishing waits for Redis up to ``answer_timeout_s`` (10 s): a Redis that
stalls for less holds what is under way, and what queues behind it leaves in a
few round trips once Redis answers; past it, the send fails (the bus counts
those events as not sent and says the layer is down; clients catch up from the
database; a Redis that only stalled may still run them, late) and the next one
starts on a new connection, so a Redis that vanished without a reset holds at
most that much backlog. The subscriber reconnects and resubscribes on
its own, also when its connection has stayed silent that long (it sends a PING
when quiet, so a live Redis always answers something).
"""

import asyncio
import logging
import uuid
import weakref

import msgpack
from django.core.exceptions import ImproperlyConfigured

from realtime.redispubsub import ANSWER_TIMEOUT_S, Endpoint, Publisher, Subscriber

logger = logging.getLogger(__name__)


def serialize(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def deserialize(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False)


class _LoopState:
    """What one event loop holds: its publisher and its subscriber."""

    def __init__(self, endpoint: Endpoint, deliver) -> None:
        self.publisher = Publisher(endpoint)
        self.subscriber = Subscriber(endpoint, deliver)

    async def close(self) -> None:
        await self.subscriber.close()
        self.publisher.close()


class RedisPubSubLayer:
    """A channel layer over Redis pub/sub (see the module's docstring)."""

    extensions = ["groups", "flush", "group_send_many"]

    def __init__(
        self,
        hosts=None,
        prefix: str = "asgi",
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        if not isinstance(hosts, list | tuple) or len(hosts) != 1:
            raise ImproperlyConfigured(
                "The Redis layer takes one Redis URL: hosts=[url]"
            )
        self.endpoint = Endpoint(hosts[0], answer_timeout_s=answer_timeout_s)
        db = self.endpoint.db
        self.prefix = f"{prefix}:db{db}" if db else prefix
        # Layer channels of this process, each with its queue of raw messages,
        # and the layer channels in each group (by the group's Redis channel).
        self.channels: dict[str, asyncio.Queue] = {}
        self.groups: dict[bytes, set[str]] = {}
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # -- naming ---------------------------------------------------------------------
    def redis_channel(self, group: str) -> bytes:
        """The Redis pub/sub channel of a group (channels-redis names it alike)."""
        return f"{self.prefix}__group__{group}".encode()

    # -- the loop's connections -----------------------------------------------------
    def _state(self) -> _LoopState | None:
        return self._states.get(asyncio.get_running_loop())

    def _receiving_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState(self.endpoint, self._deliver)
        return state

    def _deliver(self, name: bytes, data: bytes) -> None:
        queue = self.channels.get(name.decode())
        if queue is not None:
            queue.put_nowait(data)
            return
        for channel in self.groups.get(name, ()):
            queue = self.channels.get(channel)
            if queue is not None:
                queue.put_nowait(data)

    async def _publish(self, items: list[tuple[bytes, bytes]]) -> None:
        state = self._state()
        if state is not None:
            await state.publisher.publish(items)
            return
        # A loop that does not receive (a management command's or a worker's
        # short-lived one): a connection for this call only.
        publisher = Publisher(self.endpoint)
        try:
            await publisher.publish(items)
        finally:
            publisher.close()

    # -- the channel layer API --------------------------------------------------------
    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue()
        self._receiving_state().subscriber.subscribe(channel.encode())
        return channel

    async def receive(self, channel: str) -> dict:
        queue = self.channels.get(channel)
        if queue is None:
            raise RuntimeError(f"{channel!r} is not a channel of this layer's process")
        while True:
            data = await queue.get()
            try:
                message = deserialize(data)
            except (ValueError, msgpack.UnpackException):
                message = None
            if isinstance(message, dict):
                return message
            # Not a layer message (someone else published on our channels).
            logger.warning("Dropped a message that is not a layer message: %.60r", data)

    async def send(self, channel: str, message: dict) -> None:
        await self._publish([(channel.encode(), serialize(message))])

    async def group_add(self, group: str, channel: str) -> None:
        if channel not in self.channels:
            raise RuntimeError(f"{channel!r} is not a channel of this layer's process")
        name = self.redis_channel(group)
        self.groups.setdefault(name, set()).add(channel)
        self._receiving_state().subscriber.subscribe(name)

    async def group_discard(self, group: str, channel: str) -> None:
        name = self.redis_channel(group)
        members = self.groups.get(name)
        if members is None or channel not in members:
            return
        members.discard(channel)
        if not members:
            del self.groups[name]
            self._receiving_state().subscriber.unsubscribe(name)

    async def group_send(self, group: str, message: dict) -> None:
        await self._publish([(self.redis_channel(group), serialize(message))])

    async def group_send_many(self, items) -> None:
        """Publish each ``(group, message)`` in one round trip, in the given order."""
        await self._publish(
            [
                (self.redis_channel(group), serialize(message))
                for group, message in items
            ]
        )

    async def flush(self) -> None:
        """Forget every channel and group and close this loop's connections."""
        self.channels.clear()
        self.groups.clear()
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.close()
