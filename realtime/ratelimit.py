"""Per-user token buckets for client events; in Redis when REDIS_URL is set."""

import asyncio
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: burst, rate/s, now (s). Returns {allowed, retry_after_ms}.
_TOKEN_BUCKET_LUA = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, retry}
"""


class LocalBuckets:
    """Token buckets in this process's memory (one process, embedded default)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, key: str, burst: int, rate: float) -> float | None:
        now = time.monotonic()
        tokens, ts = self._buckets.get(key, (float(burst), now))
        tokens = min(burst, tokens + (now - ts) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # bound memory: forget the oldest half
                for stale in list(self._buckets)[:50_000]:
                    del self._buckets[stale]
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate


# A rate-limit check waits this long for Redis at most (seconds); after a failure,
# Redis is left alone this long and the process limits on its own meanwhile, so
# a Redis outage or restart never holds the events it limits.
REDIS_TIMEOUT_S = 0.25


class RedisBuckets:
    """Token buckets in Redis, shared by every process; local while Redis is away."""

    def __init__(self, url: str) -> None:
        from realtime.redisclient import RedisBackoff, redis_client

        self._client = redis_client(url, timeout_s=REDIS_TIMEOUT_S)
        self._script = self._client.register_script(_TOKEN_BUCKET_LUA)
        self._local = LocalBuckets()
        self._backoff = RedisBackoff()

    async def hit(self, key: str, burst: int, rate: float) -> float | None:
        if self._backoff.waiting:
            return await self._local.hit(key, burst, rate)
        try:
            allowed, retry_ms = await asyncio.wait_for(
                self._script(
                    keys=[f"bamchat:rl:{key}"], args=[burst, rate, time.time()]
                ),
                timeout=REDIS_TIMEOUT_S,
            )
        except Exception as exc:
            # Keep limiting per process while the shared store is away.
            logger.debug("Rate-limit store unreachable (%s); limiting locally", exc)
            self._backoff.failed()
            return await self._local.hit(key, burst, rate)
        return None if int(allowed) else int(retry_ms) / 1000


class RateLimiter:
    """Whether a user may act now, per the REALTIME["RATE_LIMITS"] setting."""

    def __init__(self) -> None:
        url = getattr(settings, "REDIS_URL", "")
        self._store = RedisBuckets(url) if url else LocalBuckets()

    async def retry_after(self, *, user_id: int, action: str) -> float | None:
        """None when allowed (one token taken), else seconds until the next token."""
        limits = settings.REALTIME["RATE_LIMITS"].get(action)
        if not limits:
            return None
        burst, rate = limits
        return await self._store.hit(f"{action}:{user_id}", burst, rate)
