"""BAM Chat's Redis channel layer against a real redis-server of the test's own:
the channel-layer API, ``group_send_many``, and what Redis going away does."""

import asyncio
import logging

import pytest
import redis.asyncio as aredis
from asgiref.sync import async_to_sync

from realtime.layer import RedisPubSubLayer
from tests.services import TIMEOUT_S, FailoverProxy, until, until_subscribed

pytestmark = pytest.mark.services


async def receive(layer, channel):
    return await asyncio.wait_for(layer.receive(channel), TIMEOUT_S)


@pytest.fixture
async def two(private_redis):
    """Two layers on one Redis, as two server processes have."""
    layers = [RedisPubSubLayer(hosts=[private_redis.url]) for _ in range(2)]
    yield layers
    for layer in layers:
        await layer.flush()


async def test_group_send_many_reaches_every_member_in_the_order_given(
    two, private_redis
):
    a, b = two
    ca, cb = await a.new_channel(), await b.new_channel()
    await a.group_add("g1", ca)
    await b.group_add("g1", cb)
    await b.group_add("g2", cb)
    await until_subscribed(
        private_redis.url, {a.redis_channel("g1"): 2, a.redis_channel("g2"): 1}
    )
    items = [(f"g{1 + n % 2}", {"type": "test", "n": n}) for n in range(300)]
    await a.group_send_many(items)
    assert [(await receive(b, cb))["n"] for _ in range(300)] == list(range(300))
    assert [(await receive(a, ca))["n"] for _ in range(150)] == list(range(0, 300, 2))


async def test_send_reaches_one_channel_and_a_discarded_group_nothing_more(
    two, private_redis
):
    a, b = two
    cb = await b.new_channel()
    await b.group_add("gone", cb)
    await b.group_add("kept", cb)
    await until_subscribed(
        private_redis.url, {b.redis_channel("gone"): 1, b.redis_channel("kept"): 1}
    )
    await b.group_discard("gone", cb)
    await a.group_send_many([("gone", {"type": "late"}), ("kept", {"type": "mark"})])
    await a.send(cb, {"type": "direct"})
    assert (await receive(b, cb))["type"] == "mark"
    assert (await receive(b, cb))["type"] == "direct"
    assert b.channels[cb].empty()


async def test_both_connections_come_back_after_a_redis_restart(two, private_redis):
    """The subscriber reconnects and resubscribes on its own; the publisher's
    kept connection, dropped by the restart, is replaced by the next send, which
    is not lost."""
    a, b = two
    await a.new_channel()  # a process's layer: it keeps its publishing connection
    cb = await b.new_channel()
    await b.group_add("g", cb)
    name = b.redis_channel("g")
    await until_subscribed(private_redis.url, {name: 1})
    await a.group_send("g", {"type": "before"})
    assert (await receive(b, cb))["type"] == "before"
    private_redis.stop()
    private_redis.start()
    await until_subscribed(private_redis.url, {name: 1})
    await a.group_send("g", {"type": "after"})
    assert (await receive(b, cb))["type"] == "after"


@pytest.fixture
async def proxy(private_redis):
    """The private Redis behind a proxy whose open connections can go silent."""
    proxy = await FailoverProxy([private_redis.port]).start()
    yield proxy
    await proxy.close()


# How long the layers of the two tests below wait for an answer (the setting's
# default is 10 s): the test waits for them to give up, never for a fixed time.
ANSWER_S = 0.5


async def test_a_subscriber_whose_connection_went_silent_connects_again(
    private_redis, proxy
):
    """A connection that stops carrying anything, without a reset, is noticed
    (nothing comes back, not even the answer to a PING) and replaced; before,
    the process listened on it for good and heard nothing more."""
    url = f"redis://127.0.0.1:{proxy.port}/0"
    listener = RedisPubSubLayer(hosts=[url], answer_timeout_s=ANSWER_S)
    sender = RedisPubSubLayer(hosts=[private_redis.url])
    try:
        channel = await listener.new_channel()
        await listener.group_add("g", channel)
        name = listener.redis_channel("g")
        await until_subscribed(private_redis.url, {name: 1})
        proxy.freeze()
        # Redis still counts the silent connection: a second subscriber on the
        # channel is the new connection.
        await until_subscribed(private_redis.url, {name: 2})
        await sender.group_send("g", {"type": "heard"})
        assert (await receive(listener, channel))["type"] == "heard"
    finally:
        await listener.flush()
        await sender.flush()


async def test_a_publish_on_a_silent_connection_fails_and_the_next_one_gets_through(
    private_redis, proxy
):
    """A send waits ``answer_timeout_s`` at most for Redis (then the bus drops
    it and says the layer is down), so a Redis gone without a reset cannot hold
    a process's events for good; the next send uses a new connection."""
    url = f"redis://127.0.0.1:{proxy.port}/0"
    sender = RedisPubSubLayer(hosts=[url], answer_timeout_s=ANSWER_S)
    listener = RedisPubSubLayer(hosts=[private_redis.url])
    try:
        await sender.new_channel()  # a server's layer: it keeps its connection
        channel = await listener.new_channel()
        await listener.group_add("g", channel)
        await until_subscribed(private_redis.url, {listener.redis_channel("g"): 1})
        await sender.group_send("g", {"type": "before"})
        assert (await receive(listener, channel))["type"] == "before"
        proxy.freeze()
        stuck = asyncio.ensure_future(sender.group_send("g", {"type": "swallowed"}))
        done, _ = await asyncio.wait({stuck}, timeout=TIMEOUT_S)
        assert done, "a send on a silent connection still waits"
        assert isinstance(stuck.exception(), TimeoutError)
        await asyncio.wait_for(sender.group_send("g", {"type": "after"}), TIMEOUT_S)
        assert (await receive(listener, channel))["type"] == "after"
        assert listener.channels[channel].empty()
    finally:
        if not stuck.done():
            stuck.cancel()
        await sender.flush()
        await listener.flush()


async def test_a_wrong_password_is_an_error_not_a_hang(
    private_redis_with_password, caplog
):
    url = private_redis_with_password.url.replace("layer-test-password", "wrong")
    layer = RedisPubSubLayer(hosts=[url])
    caplog.set_level(logging.ERROR, logger="realtime.redispubsub")
    try:
        with pytest.raises(ConnectionError, match="refused the login"):
            await asyncio.wait_for(layer.group_send("g", {"type": "x"}), TIMEOUT_S)
        await layer.new_channel()

        async def logged():
            return any("subscriber lost" in r.getMessage() for r in caplog.records)

        await until(logged, "the subscriber's failed login logged")
        assert not layer._state().subscriber.connected
    finally:
        await layer.flush()


async def test_a_redis_that_asks_for_a_password(private_redis_with_password):
    url = private_redis_with_password.url
    layer = RedisPubSubLayer(hosts=[url])
    try:
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await until_subscribed(url, {layer.redis_channel("g"): 1})
        await layer.group_send("g", {"type": "secret"})
        assert (await receive(layer, channel))["type"] == "secret"
    finally:
        await layer.flush()


async def test_what_is_not_a_layer_message_is_dropped_not_raised(
    two, private_redis, caplog
):
    _, b = two
    cb = await b.new_channel()
    await b.group_add("g", cb)
    name = b.redis_channel("g")
    await until_subscribed(private_redis.url, {name: 1})
    caplog.set_level(logging.WARNING, logger="realtime.layer")
    async with aredis.Redis.from_url(private_redis.url) as client:
        for raw in (b"\xc1", b"\x01", b"not msgpack at all"):
            await client.publish(name, raw)
    await b.group_send("g", {"type": "good"})
    assert (await receive(b, cb))["type"] == "good"
    assert sum("not a layer message" in r.getMessage() for r in caplog.records) == 3


async def test_a_loop_that_does_not_receive_sends_on_a_connection_of_its_own(
    two, private_redis
):
    """A worker's or a management command's send (``async_to_sync``, a new loop
    each time) reaches the servers and leaves no connection behind."""
    a, b = two
    cb = await b.new_channel()
    await b.group_add("g", cb)
    await until_subscribed(private_redis.url, {b.redis_channel("g"): 1})
    async with aredis.Redis.from_url(private_redis.url) as client:
        before = (await client.info("clients"))["connected_clients"]
        for n in range(5):
            await asyncio.to_thread(async_to_sync(a.group_send), "g", {"n": n})
        assert [(await receive(b, cb))["n"] for _ in range(5)] == list(range(5))

        async def back_to_before():
            return (await client.info("clients"))["connected_clients"] == before

        await until(back_to_before, f"{before} Redis connections again")


async def test_deployments_on_two_databases_of_one_redis_do_not_hear_each_other(
    private_redis,
):
    """Pub/sub ignores the database number; the layer's channel names do not."""
    base = private_redis.url.rsplit("/", 1)[0]
    zero, one, also_one = (
        RedisPubSubLayer(hosts=[f"{base}/0"]),
        RedisPubSubLayer(hosts=[f"{base}/1"]),
        RedisPubSubLayer(hosts=[f"{base}?db=1"]),
    )
    try:
        c0, c1 = await zero.new_channel(), await one.new_channel()
        await zero.group_add("bam.1", c0)
        await one.group_add("bam.1", c1)
        assert zero.redis_channel("bam.1") == b"asgi__group__bam.1"
        assert one.redis_channel("bam.1") == also_one.redis_channel("bam.1")
        await until_subscribed(
            private_redis.url,
            {zero.redis_channel("bam.1"): 1, one.redis_channel("bam.1"): 1},
        )
        # Redis has handed a PUBLISH to every subscriber when it answers it, so
        # a crossing "other" would reach the channel before "own".
        await zero.group_send("bam.1", {"type": "other"})
        await also_one.group_send("bam.1", {"type": "own"})
        assert (await receive(one, c1))["type"] == "own"
        assert one.channels[c1].empty()
        assert (await receive(zero, c0))["type"] == "other"
        assert zero.channels[c0].empty()
    finally:
        for layer in (zero, one, also_one):
            await layer.flush()
