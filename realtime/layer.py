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
``group_send_many``: every ``(group, message)`` in one pipeline, one round trip
(redis-py's public pipeline). Its one subscribing connection is read in chunks
and parsed with hiredis's ``Reader`` (the parser redis-py itself uses): all the
messages that arrived together are handed out in one loop turn. Messages are
msgpack, as in channels-redis.

Like channels-redis's, publishing waits as long as Redis does (a frozen Redis
holds what is under way; what queues behind it leaves in a few round trips once
Redis answers), and the subscriber reconnects and resubscribes on its own.
"""

import asyncio
import logging
import uuid
import weakref
from urllib.parse import unquote, urlsplit

import hiredis
import msgpack
import redis.asyncio as aredis
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# Back-off between attempts to reconnect the subscribing connection (seconds).
RECONNECT_S = (0.2, 0.5, 1, 2, 3)
CONNECT_TIMEOUT_S = 2.0
READ_CHUNK = 1 << 16


def serialize(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def deserialize(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False)


def command(*args: bytes | str) -> bytes:
    """One Redis command in the protocol's wire form (RESP)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Subscriber:
    """One connection in subscribe mode, for the life of the loop that made it.

    ``wanted`` is the truth: every name in it has been subscribed on the current
    connection, and a new connection subscribes to all of it first. Subscribing
    never waits for Redis (a join must not wait out a Redis stall), as with
    channels-redis, whose SUBSCRIBE did not wait for its answer either.
    """

    def __init__(self, url: str, deliver) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ImproperlyConfigured(f"Not a Redis URL: {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.deliver = deliver
        self.wanted: set[bytes] = set()
        self.connected = False
        self._writer: asyncio.StreamWriter | None = None
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="realtime-layer-subscriber"
        )

    def subscribe(self, name: bytes) -> None:
        if name not in self.wanted:
            self.wanted.add(name)
            self._write(command("SUBSCRIBE", name))

    def unsubscribe(self, name: bytes) -> None:
        if name in self.wanted:
            self.wanted.discard(name)
            self._write(command("UNSUBSCRIBE", name))

    def _write(self, data: bytes) -> None:
        # Not connected: the next connection subscribes to all that is wanted.
        if self._writer is not None:
            self._writer.write(data)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        attempt = 0
        while True:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.tls or None),
                    CONNECT_TIMEOUT_S,
                )
                parser = hiredis.Reader()
                if self.password is not None:
                    auth = [self.username] if self.username else []
                    writer.write(command("AUTH", *auth, self.password))
                if self.wanted:
                    writer.write(command("SUBSCRIBE", *self.wanted))
                self._writer = writer
                self.connected = True
                if attempt:
                    logger.warning("Redis subscriber connected again")
                attempt = 0
                while True:
                    data = await reader.read(READ_CHUNK)
                    if not data:
                        raise ConnectionError("Redis closed the connection")
                    parser.feed(data)
                    while (reply := parser.gets()) is not False:
                        self._handle(reply)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, hiredis.ProtocolError) as exc:
                if not attempt:
                    logger.error("Redis subscriber lost: %r; reconnecting", exc)
            except Exception:
                # Never leave the process deaf: whatever went wrong, reconnect.
                logger.exception("Redis subscriber failed; reconnecting")
            finally:
                self._writer = None
                self.connected = False
                if writer is not None:
                    writer.close()
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1

    def _handle(self, reply) -> None:
        if isinstance(reply, list):
            if reply[0] == b"message":
                self.deliver(reply[1], reply[2])
            return  # (un)subscribe confirmations
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis refused the subscriber: {reply}")


class _LoopState:
    """What one event loop holds: its publishing client and its subscriber."""

    def __init__(self, url: str, deliver) -> None:
        self.client = aredis.Redis.from_url(url)
        self.subscriber = Subscriber(url, deliver)

    async def close(self) -> None:
        await self.subscriber.close()
        await self.client.aclose()


class RedisPubSubLayer:
    """A channel layer over Redis pub/sub (see the module's docstring)."""

    extensions = ["groups", "flush", "group_send_many"]

    def __init__(self, hosts=None, prefix: str = "asgi") -> None:
        if not isinstance(hosts, list | tuple) or len(hosts) != 1:
            raise ImproperlyConfigured(
                "The Redis layer takes one Redis URL: hosts=[url]"
            )
        self.url = hosts[0]
        self.prefix = prefix
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
            state = self._states[loop] = _LoopState(self.url, self._deliver)
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
        if state is None:
            # A loop that does not receive (a management command's or a worker's
            # short-lived one): a connection for this call only.
            async with aredis.Redis.from_url(self.url) as client:
                await self._pipeline(client, items)
            return
        await self._pipeline(state.client, items)

    @staticmethod
    async def _pipeline(client: aredis.Redis, items) -> None:
        if len(items) == 1:
            await client.publish(*items[0])
            return
        async with client.pipeline(transaction=False) as pipe:
            for name, data in items:
                pipe.publish(name, data)
            await pipe.execute()

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
