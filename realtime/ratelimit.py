"""Per-user token buckets for client events; in Redis when REDIS_URL is set."""

import asyncio
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# One call checks several buckets in order (a batch of checks; a key may come
# more than once). KEYS: the buckets; ARGV[1]: now (s); ARGV[2i], ARGV[2i+1]:
# burst and rate/s of KEYS[i]. Returns {allowed, retry_after_ms} per key, flat.
_TOKEN_BUCKETS_LUA = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 't', 'ts')
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
  redis.call('HSET', key, 't', tokens, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  out[2 * i - 1] = allowed
  out[2 * i] = retry
end
return out
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


# Checks sent to Redis in one script call at most; more wait for the next call.
MAX_BATCH = 500


class RedisBuckets:
    """Token buckets in Redis, shared by every process; local while Redis is away.

    Checks that arrive while a call is under way go together in the next one
    (group commit, ``realtime.batching``): a busy chat checks every send, and
    one script call per round trip costs Redis and this process far less than
    one per check, and leaves the pool free for the rest.
    """

    def __init__(self, url: str) -> None:
        from realtime.batching import Batcher
        from realtime.redisclient import RedisBackoff, redis_client

        self._client = redis_client(url, timeout_s=REDIS_TIMEOUT_S)
        self._script = self._client.register_script(_TOKEN_BUCKETS_LUA)
        self._local = LocalBuckets()
        self._backoff = RedisBackoff()
        self._batcher = Batcher(self._hit_batch, max_batch=MAX_BATCH)

    async def hit(self, key: str, burst: int, rate: float) -> float | None:
        if self._backoff.waiting:
            return await self._local.hit(key, burst, rate)
        return await self._batcher.submit((key, burst, rate))

    async def _hit_batch(self, checks: list) -> list:
        if not self._backoff.waiting:
            args: list = [time.time()]
            for _, burst, rate in checks:
                args += (burst, rate)
            keys = [f"bamchat:rl:{key}" for key, _, _ in checks]
            try:
                # A deadline on this task, not wait_for's task around the call:
                # one call per batch of a busy chat, each saving a task and a
                # loop turn.
                async with asyncio.timeout(REDIS_TIMEOUT_S):
                    flat = await self._script(keys=keys, args=args)
            except Exception as exc:
                # Keep limiting per process while the shared store is away.
                logger.debug("Rate-limit store unreachable (%s); limiting locally", exc)
                self._backoff.failed()
            else:
                return [
                    None if int(flat[2 * i]) else int(flat[2 * i + 1]) / 1000
                    for i in range(len(checks))
                ]
        return [await self._local.hit(*check) for check in checks]


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
