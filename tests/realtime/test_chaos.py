"""Exactly once under faults: steady chat on three processes while one is killed
and restarted and Redis restarts; every client ends with every event once, in
``seq`` order, and no acknowledged message is missing from the database."""

import asyncio
import logging
import statistics
import time

import pytest

from tests.live import (
    EVENT_TIMEOUT_S,
    Api,
    ChatApp,
)

pytestmark = [pytest.mark.services, pytest.mark.live]

logger = logging.getLogger(__name__)

FAST_LIFE = {"REALTIME_HEARTBEAT_INTERVAL_S": "1", "REALTIME_PROCESS_DEAD_AFTER_S": "5"}
USERS = 9  # three per process
SEND_EVERY_S = 0.3


class Sender:
    """One client app that chats steadily and remembers what was acknowledged."""

    def __init__(self, app: ChatApp, label: str) -> None:
        self.app, self.label = app, label
        self.acked: list[str] = []
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds)
        self.unacked: list[str] = []
        self.count = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), SEND_EVERY_S)  # pacing
            except TimeoutError:
                pass
            if stop.is_set() or not self.app.client.connected:
                continue
            retry = self.unacked[:1]
            temp_id = retry[0] if retry else f"{self.label}-{self.count}"
            if not retry:
                self.count += 1
            started = time.monotonic()
            try:
                ack = await self.app.client.call(
                    "send-message",
                    {"bamId": self.app.bam_id, "content": temp_id, "tempId": temp_id},
                    timeout=5,
                )
            except Exception:
                if not retry:
                    self.unacked.append(temp_id)
                continue
            if ack.get("ok"):
                self.latencies.append((started, time.monotonic() - started))
                self.acked.append(ack["message"]["id"])
                if retry:
                    self.unacked.pop(0)
            elif not retry:
                self.unacked.append(temp_id)


@pytest.mark.stack_env(**FAST_LIFE)
async def test_kill_restart_and_redis_restart_lose_and_repeat_nothing(private_stack):
    deployment, redis_server = private_stack
    nodes = deployment.start_servers("A", "B", "C")
    api = Api(nodes[0].url)
    accounts = [await api.account(f"chaos{i}") for i in range(USERS)]
    bam = await api.bam(accounts[0], *accounts[1:])
    senders = []
    for i, who in enumerate(accounts):
        app = await ChatApp(nodes[i % 3].url, who.access, bam["id"]).start()
        senders.append(Sender(app, f"u{i}"))
    for sender in senders:
        await sender.app.wait_joined()
    stop = asyncio.Event()
    traffic = [asyncio.create_task(s.run(stop)) for s in senders]

    async def phase(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)  # traffic runs meanwhile
        except TimeoutError:
            pass

    try:
        await phase(3)
        fault_at = time.monotonic()
        victim = nodes[2]
        port = victim.port
        victim.kill()
        await phase(1)
        victim.start(port=port)
        await phase(3)
        redis_server.stop()
        await phase(0.5)
        redis_server.start()
        back_at = time.monotonic()
        await phase(8)
    finally:
        stop.set()
        await asyncio.gather(*traffic, return_exceptions=True)

    fence = await api.post_message(accounts[0], bam["id"], "fence")
    for sender in senders:
        await sender.app.wait_seq(fence["seq"], timeout=3 * EVENT_TIMEOUT_S)
    expected = list(range(1, fence["seq"] + 1))
    for sender in senders:
        seqs = sender.app.seqs
        dupes = len(seqs) - len(set(seqs))
        assert seqs == expected, (
            f"{sender.label}: {dupes} repeated, "
            f"{len(set(expected) - set(seqs))} missing, or out of order"
        )

    stored = set()
    status, page = await api.request(
        "GET", f"/bams/{bam['id']}/messages?limit=200", token=accounts[0].access
    )
    while True:
        assert status == 200, page
        stored |= {m["id"] for m in page["results"]}
        if not page["next"]:
            break
        status, page = await api.request(
            "GET", page["next"].split(nodes[0].url, 1)[-1], token=accounts[0].access
        )
    acked = {i for s in senders for i in s.acked}
    assert acked and acked <= stored, "an acknowledged message is not stored"

    before = [d for s in senders for t, d in s.latencies if t < fault_at]
    after = [d for s in senders for t, d in s.latencies if t > back_at + 5]
    assert before and after, "no acks before the faults or after recovery"
    logger.warning(
        "ack latency median: %.0f ms before the faults, %.0f ms from 5 s after "
        "Redis returned",
        statistics.median(before) * 1000,
        statistics.median(after) * 1000,
    )

    for sender in senders:
        await sender.app.client.disconnect()
    await api.close()
