"""The bus: each group's envelopes in order; a slow group holds no other back."""

import asyncio
import os
import signal

import pytest
from channels.layers import get_channel_layer

from realtime.bus import BATCH_MAX, Bus
from tests.services import until_subscribed


async def test_a_slow_group_does_not_hold_the_others_back():
    seen: list[tuple[str, int]] = []
    release_a = asyncio.Event()
    b_done = asyncio.Event()

    async def deliver(message: dict) -> None:
        if message["group"] == "a" and message["n"] == 0:
            await release_a.wait()  # the first publish of group a is slow
        seen.append((message["group"], message["n"]))
        if message["group"] == "b" and message["n"] == 2:
            b_done.set()

    bus = Bus()
    bus.start(deliver)  # the in-memory layer of the test settings: local delivery
    for n in range(3):
        bus.send("a", {"type": "realtime.test", "group": "a", "n": n})
        bus.send("b", {"type": "realtime.test", "group": "b", "n": n})
    await asyncio.wait_for(b_done.wait(), 5)
    assert [n for g, n in seen if g == "a"] == []  # still behind its slow first
    release_a.set()
    await asyncio.wait_for(bus._queue.join(), 5)
    assert [n for g, n in seen if g == "a"] == [0, 1, 2]
    assert [n for g, n in seen if g == "b"] == [0, 1, 2]
    await bus.stop()


async def test_stop_sends_what_waits_in_the_lanes():
    seen: list[int] = []
    gate = asyncio.Event()

    async def deliver(message: dict) -> None:
        await gate.wait()
        seen.append(message["n"])

    bus = Bus()
    bus.start(deliver)
    for n in range(3):
        bus.send("a", {"type": "realtime.test", "n": n})
    for _ in range(100):  # a few loop turns: submitted, then moved into the lane
        if bus.unsent == 3 and not bus._queue.qsize():
            break
        await asyncio.sleep(0)
    assert bus.unsent == 3 and not bus._queue.qsize()
    asyncio.get_running_loop().call_soon(gate.set)
    await bus.stop()
    assert seen == [0, 1, 2]


@pytest.fixture
async def redis_layer(private_redis, settings):
    """The Redis layer of the settings, on a Redis of the test's own."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layer.RedisPubSubLayer",
            "CONFIG": {"hosts": [private_redis.url]},
        }
    }
    layer = get_channel_layer()
    yield layer
    await layer.flush()


async def test_a_backlog_after_a_redis_stall_leaves_in_a_few_layer_messages(
    private_redis, redis_layer
):
    """While Redis is frozen, a group's events queue behind its one publish under
    way; once Redis answers they leave together, not one round trip each (which
    kept delivery late for many seconds after a stall)."""
    layer = redis_layer
    channel = await layer.new_channel()
    await layer.group_add("bam-1", channel)
    await until_subscribed(private_redis.url, {layer.redis_channel("bam-1"): 1})
    bus = Bus()
    bus.start(lambda message: None)
    events = 300
    pid = private_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        bus.send("bam-1", {"type": "realtime.test", "n": 0})
        for _ in range(100):  # a few loop turns: its publish is under way
            if bus.unsent == 1 and not bus._queue.qsize():
                break
            await asyncio.sleep(0)
        assert bus.unsent == 1 and not bus._queue.qsize()
        for n in range(1, events):  # these queue behind it
            bus.send("bam-1", {"type": "realtime.test", "n": n})
        for _ in range(100):
            if not bus._queue.qsize():
                break
            await asyncio.sleep(0)
    finally:
        os.kill(pid, signal.SIGCONT)
    received: list[dict] = []
    seen: list[int] = []
    while len(seen) < events:
        message = await asyncio.wait_for(layer.receive(channel), 10)
        received.append(message)
        items = message["items"] if message["type"] == "realtime.batch" else [message]
        seen.extend(item["n"] for item in items)
    assert seen == list(range(events))
    assert len(received) <= 1 + -(-events // BATCH_MAX), (
        f"{events} events took {len(received)} layer messages"
    )
    await bus.stop()


async def test_every_groups_events_leave_together_and_in_order(
    private_redis, redis_layer
):
    """On a layer with ``group_send_many`` the bus sends what queued for every
    group in one call: each group's events arrive in order, batched."""
    layer = redis_layer
    channel = await layer.new_channel()
    groups = [f"bam-{n}" for n in range(40)]
    for group in groups:
        await layer.group_add(group, channel)
    await until_subscribed(
        private_redis.url, {layer.redis_channel(g): 1 for g in groups}
    )
    bus = Bus()
    bus.start(lambda message: None)
    assert bus.pipelined
    events = 4000
    for n in range(events):
        group = groups[n % len(groups)]
        bus.send(group, {"type": "realtime.test", "group": group, "n": n})
    seen: dict[str, list[int]] = {group: [] for group in groups}
    messages = 0
    while sum(map(len, seen.values())) < events:
        message = await asyncio.wait_for(layer.receive(channel), 10)
        messages += 1
        items = message["items"] if message["type"] == "realtime.batch" else [message]
        for item in items:
            seen[item["group"]].append(item["n"])
    for k, group in enumerate(groups):
        assert seen[group] == list(range(k, events, len(groups))), group
    assert messages < events / 2, f"{events} events took {messages} layer messages"
    await bus.stop()


async def test_every_event_a_failed_publish_carried_is_counted(
    private_redis, redis_layer
):
    """One publish carries everything queued; when it fails, the failure counter
    grows by the events it carried, not by one."""
    from prometheus_client import REGISTRY

    def failures() -> float:
        return REGISTRY.get_sample_value(
            "bamchat_channel_layer_publish_failures_total", {"sender": "bus"}
        )

    private_redis.stop()
    bus = Bus()
    bus.start(lambda message: None)
    before = failures()
    for n in range(50):  # queued in one loop turn: they leave in one call
        bus.send(f"bam-{n % 5}", {"type": "realtime.test", "n": n})
    await asyncio.wait_for(bus._queue.join(), 5)
    assert failures() - before == 50
    await bus.stop()
