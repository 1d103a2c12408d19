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


def _script_calls(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(
        stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("eval", "evalsha")
    )


async def test_a_burst_of_limit_checks_costs_redis_a_few_calls_not_one_each(redis_url):
    """Checks that arrive together (a busy chat: every send is checked) share
    one script call per round trip instead of one each, and still take exactly
    one token each: a user's burst is honoured across the whole batch."""
    buckets = RedisBuckets(redis_url)
    await buckets.hit("warm:0", 5, 1.0)  # the script is loaded, the pool has a line
    before = _script_calls(redis_url)
    results = await asyncio.gather(
        *(buckets.hit(f"send-message:{i % 40}", 5, 0.001) for i in range(BURST))
    )
    calls = _script_calls(redis_url) - before
    assert buckets._backoff.until == 0.0, "a check fell back to local limits"
    assert calls <= BURST // 20, f"{calls} script calls for {BURST} checks"
    # 40 users, 10 checks each, a burst of 5 and a negligible refill: 5 pass each.
    allowed = [r is None for r in results]
    for user in range(40):
        assert sum(allowed[user::40]) == 5, f"user {user}: {sum(allowed[user::40])}"
    refused = [r for r in results if r is not None]
    assert refused and all(r > 0 for r in refused)
