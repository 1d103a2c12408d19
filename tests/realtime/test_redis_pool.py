"""The cluster view and the shared rate limits under a burst of concurrent calls
(a connect storm), against a real Redis of the test's own."""

import asyncio

import pytest
import redis

from realtime.cluster import RedisView
from realtime.ratelimit import RedisBuckets
from realtime.roster import Roster
from tests.live import PrivateRedis, ci

pytestmark = pytest.mark.services

BURST = 400  # concurrent calls: four times redis-py's default pool


@pytest.fixture
def redis_url():
    import shutil

    if shutil.which("redis-server") is None:
        if ci():
            pytest.fail("redis-server is not installed; CI must run this")
        pytest.skip("redis-server not installed: Redis burst test skipped")
    server = PrivateRedis()
    server.start()
    yield server.url
    server.stop()


async def test_a_burst_of_view_calls_waits_its_turn_instead_of_failing(redis_url):
    view = RedisView(Roster("burst-process"), redis_url)
    await asyncio.gather(
        *(view.set_status(user_id, "online") for user_id in range(BURST))
    )
    assert view.lost is False, "a call failed: the view paused itself"
    stored = redis.Redis.from_url(redis_url).hgetall(view._key("presence"))
    assert len(stored) == BURST
    await view.client.aclose()


async def test_a_burst_of_limit_checks_stays_shared(redis_url):
    buckets = RedisBuckets(redis_url)
    results = await asyncio.gather(
        *(buckets.hit(f"burst:{i}", 5, 1.0) for i in range(BURST))
    )
    assert results == [None] * BURST
    assert buckets._skip_until == 0.0, "a check fell back to local limits"
    keys = redis.Redis.from_url(redis_url).keys("bamchat:rl:burst:*")
    assert len(keys) == BURST
