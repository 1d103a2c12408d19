"""The cluster view and the shared rate limits under a burst of concurrent calls
(a connect storm), against a real Redis of the test's own."""

import asyncio
import logging

import pytest
import redis

from realtime.cluster import RedisView
from realtime.ratelimit import RedisBuckets
from realtime.roster import Roster, SocketInfo
from tests.live import ci
from tests.services import PrivateRedis

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


async def test_a_burst_of_limit_checks_never_runs_out_of_connections(redis_url, caplog):
    """Each check waits 250 ms for Redis at most and then limits locally for a
    second (a slow machine may get there); running out of connections, which
    redis-py's default pool did past 100 concurrent calls, never happens."""
    caplog.set_level(logging.DEBUG, logger="realtime.ratelimit")
    buckets = RedisBuckets(redis_url)
    results = await asyncio.gather(
        *(buckets.hit(f"burst:{i}", 5, 1.0) for i in range(BURST))
    )
    assert results == [None] * BURST  # allowed, shared or local
    failures = [r.getMessage() for r in caplog.records]
    assert not [f for f in failures if "Too many connections" in f], failures[:3]
    if buckets._backoff.until == 0.0:  # no check fell back: all of them are shared
        keys = redis.Redis.from_url(redis_url).keys("bamchat:rl:burst:*")
        assert len(keys) == BURST


async def test_a_lost_view_is_written_back_once_for_a_burst_of_calls(redis_url):
    """Calls that find the view lost (Redis restarted, or a call timed out under
    load) share one rewrite instead of each rewriting every socket."""
    roster = Roster("burst-process")
    view = roster.view = RedisView(roster, redis_url)
    for n in range(300):
        info = SocketInfo(
            sid=f"s{n}",
            eio_sid=f"e{n}",
            user_id=n % 50,
            username=f"u{n % 50}",
            expires_at=0.0,
            transport="websocket",
            address="127.0.0.1",
        )
        await roster.add(info)
    rewrites = 0
    write_all = view._write_all

    async def counted():
        nonlocal rewrites
        rewrites += 1
        await write_all()

    view._write_all = counted
    view.lost = True
    await asyncio.gather(*(view.set_status(u, "away") for u in range(BURST)))
    assert rewrites == 1
    assert view.lost is False
    sockets = redis.Redis.from_url(redis_url).hlen(view._sockets_key)
    assert sockets == 300
    await view.client.aclose()
