"""The asyncio Redis clients of the cluster view and the rate limiter.

redis-py's default pool opens a connection per concurrent call and, past 100,
raises "Too many connections". A connect storm makes thousands of calls at
once: each failure paused the cluster view or the shared limits for a second.
A blocking pool instead holds at most ``POOL_SIZE`` connections and makes
further calls wait their turn (Redis answers each in well under a millisecond).
"""

import time

import redis.asyncio as aredis

POOL_SIZE = 64
# How long a call may wait for a free connection before it counts as a failure.
POOL_WAIT_S = 10.0
# A refused connection fails at once; this bounds only a server that does not
# answer. Shorter, and a busy event loop (a storm) times out healthy connects.
CONNECT_TIMEOUT_S = 2.0


# After a failure, Redis is left alone this long before it is tried again.
REDIS_RETRY_AFTER_S = 1.0


class RedisBackoff:
    """After a failed call, callers leave Redis alone for ``REDIS_RETRY_AFTER_S``
    and do without it meanwhile: the one back-off of the cluster view and the
    shared rate limits, so that a Redis outage never holds what they serve."""

    def __init__(self) -> None:
        self.until = 0.0

    @property
    def waiting(self) -> bool:
        """Whether a failure was recent enough to skip Redis now."""
        return time.monotonic() < self.until

    def failed(self) -> None:
        """Note a failure: skip Redis for a moment from now."""
        self.until = time.monotonic() + REDIS_RETRY_AFTER_S


def redis_client(url: str, *, timeout_s: float) -> aredis.Redis:
    """A client whose calls time out after ``timeout_s`` once they have a line."""
    pool = aredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_S,
        socket_timeout=timeout_s,
        socket_connect_timeout=max(timeout_s, CONNECT_TIMEOUT_S),
    )
    return aredis.Redis(connection_pool=pool)
