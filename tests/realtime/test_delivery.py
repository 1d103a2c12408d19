"""BamStream: live events that overtake each other on the bus are delivered in
seq order, from what arrives when possible, from the database when not."""

import asyncio

from prometheus_client import REGISTRY

from realtime.delivery import HOLD_BACK_S, BamStream

COUNTERS = ("held_events", "hold_timeouts", "gap_fills")


def counted() -> dict[str, float]:
    """This process's delivery counters (``bamchat_delivery_*_total``)."""
    return {
        name: REGISTRY.get_sample_value(f"bamchat_delivery_{name}_total") or 0.0
        for name in COUNTERS
    }


def counted_since(before: dict[str, float]) -> dict[str, float]:
    now = counted()
    return {name: now[name] - before[name] for name in COUNTERS}


class Relay:
    """What a stream uses of its relay: sending, history, background tasks."""

    def __init__(self, stored: dict[int, dict] | None = None) -> None:
        self.sent: list[tuple[int, str]] = []
        self.history_calls = 0
        self.stored = stored or {}
        self.server = self
        self.tasks: set = set()
        self.changed = asyncio.Event()

    async def send(self, event, data, sids):
        for sid in sids:
            self.sent.append((data["seq"], sid))
        self.changed.set()

    async def sent_count(self, n: int, timeout: float) -> None:
        async def reach() -> None:
            while len(self.sent) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reach(), timeout)

    async def history(self, bam_id, *, after, before=None, limit=None):
        self.history_calls += 1
        top = before if before is not None else max(self.stored, default=0) + 1
        return [("new-message", self.stored[s]) for s in range(after + 1, top)]

    def background(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        return task


def event(seq: int) -> tuple[str, dict]:
    return "new-message", {"seq": seq}


async def test_an_event_that_overtook_an_earlier_one_waits_for_it():
    relay = Relay()
    stream = BamStream(relay, 1)
    stream.watch("a", 0)
    stream.watch("b", 0)
    before = counted()
    await stream.offer(*event(1))
    await stream.offer(*event(3))  # 2 is still on its way
    assert relay.sent == [(1, "a"), (1, "b")]
    await stream.offer(*event(2))
    assert [s for s, sid in relay.sent if sid == "a"] == [1, 2, 3]
    assert [s for s, sid in relay.sent if sid == "b"] == [1, 2, 3]
    assert relay.history_calls == 0  # no database read for a reordering
    assert counted_since(before) == {
        "held_events": 1,
        "hold_timeouts": 0,
        "gap_fills": 0,
    }


async def test_a_lost_event_is_read_from_the_database_after_the_hold_back():
    relay = Relay(stored={s: {"seq": s} for s in range(1, 5)})
    stream = BamStream(relay, 1)
    stream.watch("a", 0)
    before = counted()
    await stream.offer(*event(1))
    await stream.offer(*event(3))
    await stream.offer(*event(4))
    assert relay.sent == [(1, "a")]
    started = asyncio.get_running_loop().time()
    await relay.sent_count(4, timeout=HOLD_BACK_S + 2)
    assert asyncio.get_running_loop().time() - started >= HOLD_BACK_S * 0.9
    assert [s for s, _ in relay.sent] == [1, 2, 3, 4]
    assert relay.history_calls == 1
    assert counted_since(before) == {
        "held_events": 2,
        "hold_timeouts": 1,
        "gap_fills": 1,
    }
    await stream.offer(*event(2))  # arriving late: already delivered, sent again never
    assert [s for s, _ in relay.sent] == [1, 2, 3, 4]


async def test_a_stream_left_by_its_last_socket_stops_holding():
    stream = BamStream(Relay(), 1)
    stream.watch("a", 0)
    await stream.offer(*event(1))
    await stream.offer(*event(3))
    assert not stream.idle
    stream.unwatch("a")
    assert stream.idle
