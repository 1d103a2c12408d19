"""Redis pub/sub on the wire, for the channel layer (``realtime.layer``).

Two kinds of connection, each to one Redis: a ``Publisher`` writes all the
PUBLISH commands of a call at once and reads their replies (one round trip), and
a ``Subscriber`` holds a connection in subscribe mode for the life of its loop.
Commands are written in Redis's wire form (RESP); what comes back is read in
chunks and parsed with hiredis's ``Reader``, the parser redis-py itself uses,
so every reply or message that arrived together is handled in one loop turn.
redis-py's pipeline and ``PubSub`` cost an await, a retry wrapper and their
bookkeeping per command or message: in a chat run its pipeline was half of
what publishing cost, and channels-redis's reader (``get_message`` with a 0.1 s
timeout, per message) most of what receiving cost.
"""

import asyncio
import logging
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from django.core.exceptions import ImproperlyConfigured

# Connecting, and logging in, wait as long at most as the other Redis clients'
# connects (a busy loop in a storm must not time out a healthy connect).
from realtime.redisclient import CONNECT_TIMEOUT_S

logger = logging.getLogger(__name__)

# Back-off between attempts to reconnect the subscribing connection (seconds).
RECONNECT_S = (0.2, 0.5, 1, 2, 3)
# How long Redis may leave a connection without an answer before it counts as
# dead (a host gone without a reset, a network partition, a failover): a publish
# waits this long at most, and a subscribing connection that hears nothing,
# not even the answer to the PING it sends when quiet, is replaced. Longer
# than a stall Redis comes back from (a fork, a slow command, a few seconds
# frozen), so those are waited out rather than turned into lost events.
ANSWER_TIMEOUT_S = 10.0
READ_CHUNK = 1 << 16


def command(*args: bytes | str) -> bytes:
    """One Redis command in the protocol's wire form (RESP)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Endpoint:
    """Where Redis is (a ``redis://`` or ``rediss://`` URL) and how to log in."""

    def __init__(self, url: str, *, answer_timeout_s: float = ANSWER_TIMEOUT_S):
        self.answer_timeout_s = answer_timeout_s
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ImproperlyConfigured(f"Not a Redis URL: {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        # The database number (``/N`` or ``?db=N``, as redis-py reads it). Pub/sub
        # ignores it: every client of the server hears every channel.
        db = parse_qs(parts.query).get("db", [parts.path.lstrip("/")])[0] or "0"
        if not db.isdigit():
            raise ImproperlyConfigured(f"Not a Redis database number: {db!r}")
        self.db = int(db)

    async def open(self) -> "Connection":
        """A new connection, logged in when the URL has a password."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls or None
            )
            connection = Connection(reader, writer)
            try:
                if self.password is not None:
                    auth = [self.username] if self.username else []
                    connection.writer.write(command("AUTH", *auth, self.password))
                    reply = await connection.reply()
                    if isinstance(reply, hiredis.ReplyError):
                        raise ConnectionError(f"Redis refused the login: {reply}")
            except BaseException:
                connection.abort()
                raise
        return connection


class Connection:
    """A stream to Redis and the parser of what it sends back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.parser = hiredis.Reader()
        self.dropped: str | None = None  # why this side dropped it, if it did

    async def fill(self) -> None:
        """Read what has arrived (at least a byte) into the parser."""
        data = await self.reader.read(READ_CHUNK)
        if not data:
            raise ConnectionError(self.dropped or "Redis closed the connection")
        self.parser.feed(data)

    async def reply(self):
        """The next reply (an error reply is returned, not raised)."""
        while (reply := self.parser.gets()) is False:
            await self.fill()
        return reply

    def close(self) -> None:
        self.writer.close()

    def abort(self, reason: str = "") -> None:
        """Drop the connection at once, with whatever it has not written yet.
        What Redis has already received may still be run when it answers again:
        a publish that timed out can arrive late (a BAM's streams ignore a seq
        they have sent)."""
        self.dropped = reason or None
        self.writer.transport.abort()


class Publisher:
    """One connection that publishes: each call writes all its PUBLISH commands
    at once and reads their replies, one round trip, one call at a time."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def publish(self, items: list[tuple[bytes, bytes]]) -> None:
        async with self._lock:
            for _ in range(2):
                fresh = self._connection is None
                if fresh:
                    self._connection = await self.endpoint.open()
                try:
                    async with asyncio.timeout(self.endpoint.answer_timeout_s):
                        await self._send(self._connection, items)
                    return
                except TimeoutError:
                    # Silent past the limit: dropped without trying again, so a
                    # dead Redis costs a send one wait, not two.
                    self._connection.abort()
                    self._connection = None
                    raise
                except (OSError, hiredis.ProtocolError):
                    self.close()
                    if fresh:
                        raise
                    # A kept connection that Redis dropped (a restart, an idle
                    # timeout): once more on a new one, as redis-py retries.
                except BaseException:
                    # An error or a cancel: the replies left unread would
                    # answer the next call, so start afresh next time.
                    self.close()
                    raise

    @staticmethod
    async def _send(connection: Connection, items) -> None:
        connection.writer.write(
            b"".join(command(b"PUBLISH", name, data) for name, data in items)
        )
        await connection.writer.drain()
        for _ in items:
            reply = await connection.reply()
            if isinstance(reply, hiredis.ReplyError):
                raise ValueError(f"Redis refused a publish: {reply}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class Subscriber:
    """One connection in subscribe mode, for the life of the loop that made it.

    ``wanted`` is the truth: every name in it has been subscribed on the current
    connection, and a new connection subscribes to all of it first. Subscribing
    never waits for Redis (a join must not wait out a Redis stall), as with
    channels-redis, whose SUBSCRIBE did not wait for its answer either.
    """

    def __init__(self, endpoint: Endpoint, deliver) -> None:
        self.endpoint = endpoint
        self.deliver = deliver
        self.wanted: set[bytes] = set()
        self.connected = False
        self._writer: asyncio.StreamWriter | None = None
        self._heard = 0.0  # loop time of the last data from Redis
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
            connection = None
            try:
                connection = await self.endpoint.open()
                if self.wanted:
                    connection.writer.write(command("SUBSCRIBE", *self.wanted))
                self._writer = connection.writer
                self.connected = True
                if attempt:
                    logger.warning("Redis subscriber connected again")
                attempt = 0
                await self._listen(connection)
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
                if connection is not None:
                    connection.close()
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1

    async def _listen(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        self._heard = loop.time()
        watchdog = loop.create_task(self._watch(connection))
        try:
            while True:
                await connection.fill()
                self._heard = loop.time()
                while (reply := connection.parser.gets()) is not False:
                    self._handle(reply)
        finally:
            watchdog.cancel()

    async def _watch(self, connection: Connection) -> None:
        """PING a quiet connection; drop one that stays silent (see
        ``ANSWER_TIMEOUT_S``), so that the reader reconnects."""
        loop = asyncio.get_running_loop()
        limit = self.endpoint.answer_timeout_s
        every = limit / 4
        while True:
            await asyncio.sleep(every)
            quiet = loop.time() - self._heard
            if quiet >= limit:
                connection.abort(f"Redis did not answer for {quiet:.1f} s")
                return
            if quiet >= every:
                connection.writer.write(command("PING"))

    def _handle(self, reply) -> None:
        if isinstance(reply, list):
            if reply[0] == b"message":
                self.deliver(reply[1], reply[2])
            return  # (un)subscribe confirmations, a PING's pong
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis refused the subscriber: {reply}")
