"""Steady chat for the stall tests: clients on several processes send at a fixed
pace and every receiver records, per message, when it arrived and how long after
it was sent (sender and receivers share this process's monotonic clock).

The figures (delivery latency p99 per second, and when it settled back under
100 ms after a fault) are written to the test's report; the tests assert only
what must hold whatever the machine's speed: nothing lost, nothing repeated,
everything in ``seq`` order, every acknowledged message stored.
"""

from __future__ import annotations

import asyncio
import gc
import time

from tests.contract import report
from tests.live import EVENT_TIMEOUT_S, Api, ChatApp, contract_of

SEND_EVERY_S = 0.2
SETTLED_P99_S = 0.1


class TimedApp(ChatApp):
    """A ChatApp that also records each delivery's latency."""

    def __init__(self, url: str, token: str, bam_id: str, label: str) -> None:
        super().__init__(url, token, bam_id)
        self.label = label
        self.deliveries: list[tuple[float, float]] = []  # (arrived at, latency)
        self.received: list[dict] = []
        self.acked: list[str] = []
        self.unacked: list[str] = []
        self.count = 0

    async def _message(self, payload) -> None:
        """Record the arrival first; the payload's check against the published
        contract waits until the traffic stops (``check_contract``), so that this
        client's own work stays out of the latencies it measures."""
        now = time.monotonic()
        sender, _, sent = (payload.get("content") or "").partition("@")
        if sent and sender != self.label:
            self.deliveries.append((now, now - float(sent)))
        self.received.append(payload)
        if payload["bamId"] == self.bam_id:
            async with self.arrived:
                self.seqs.append(payload["seq"])
                self.arrived.notify_all()

    def check_contract(self) -> None:
        for payload in self.received:
            errors = contract_of(self.url).event_errors("new-message", payload)
            report("event new-message", errors, payload)

    async def send_steadily(self, stop: asyncio.Event, every_s: float) -> None:
        """Send every ``every_s``; a message without an ack is sent again with
        the same tempId until it is acknowledged."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every_s)  # pacing
            except TimeoutError:
                pass
            if stop.is_set() or not self.client.connected:
                continue
            if self.unacked:
                temp_id = self.unacked[0]
            else:
                temp_id = f"{self.label}-{self.count}"
                self.count += 1
                self.unacked.append(temp_id)
            try:
                ack = await self.client.call(
                    "send-message",
                    {
                        "bamId": self.bam_id,
                        "content": f"{self.label}@{time.monotonic()}",
                        "tempId": temp_id,
                    },
                    timeout=5,
                )
            except Exception:
                continue
            if ack.get("ok"):
                self.acked.append(ack["message"]["id"])
                self.unacked.pop(0)


class Traffic:
    """``per_node`` users on each node, all in one BAM, chatting steadily."""

    def __init__(self, nodes, per_node: int = 3, every_s: float = SEND_EVERY_S) -> None:
        self.nodes = nodes
        self.per_node = per_node
        self.every_s = every_s
        self.api = Api(nodes[0].url)
        self.apps: list[TimedApp] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self._collecting = False  # whether to turn the collector back on

    async def start(self) -> Traffic:
        count = self.per_node * len(self.nodes)
        self.accounts = [await self.api.account(f"steady{i}") for i in range(count)]
        self.bam = await self.api.bam(self.accounts[0], *self.accounts[1:])
        for i, who in enumerate(self.accounts):
            node = self.nodes[i % len(self.nodes)]
            app = TimedApp(node.url, who.access, self.bam["id"], f"u{i}")
            self.apps.append(await app.start())
        for app in self.apps:
            await app.wait_joined()
        # This process stamps each arrival: a full collection of its own (over
        # 100 ms here, once the recorded deliveries number tens of thousands)
        # would show as a server delay for every message arriving meanwhile.
        # The traffic is short and bounded; the collector runs again at close.
        gc.collect()
        self._collecting = gc.isenabled()
        gc.disable()
        self.tasks = [
            asyncio.create_task(app.send_steadily(self.stop, self.every_s))
            for app in self.apps
        ]
        return self

    async def run_for(self, seconds: float) -> None:
        """Let the traffic run (this is the length of a phase, not a wait for an
        event)."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def finish(self) -> None:
        """Stop sending, then check that every client has every message once, in
        order, and that every acknowledged message is stored."""
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for app in self.apps:
            assert not app.unacked or app.client.connected, (
                f"{app.label} ended disconnected with unacknowledged sends"
            )
        fence = await self.api.post_message(self.accounts[0], self.bam["id"], "fence")
        for app in self.apps:
            await app.wait_seq(fence["seq"], timeout=3 * EVENT_TIMEOUT_S)
        expected = list(range(1, fence["seq"] + 1))
        for app in self.apps:
            seqs = app.seqs
            assert seqs == expected, (
                f"{app.label}: {len(seqs) - len(set(seqs))} repeated, "
                f"{len(set(expected) - set(seqs))} missing, or out of order"
            )
        for app in self.apps:
            app.check_contract()
        stored = await self.stored_ids()
        acked = {i for a in self.apps for i in a.acked}
        assert acked and acked <= stored, "an acknowledged message is not stored"

    async def stored_ids(self) -> set[str]:
        owner = self.accounts[0]
        stored: set[str] = set()
        path = f"/bams/{self.bam['id']}/messages?limit=200"
        while path:
            status, page = await self.api.request("GET", path, token=owner.access)
            assert status == 200, page
            stored |= {m["id"] for m in page["results"]}
            path = page["next"] and page["next"].split(self.nodes[0].url, 1)[-1]
        return stored

    async def close(self) -> None:
        self.stop.set()
        if self._collecting:
            gc.enable()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for app in self.apps:
            await app.client.disconnect()
        await self.api.close()

    def figures(self, fault_at: float, back_at: float) -> dict:
        """Delivery latency before the fault and per second after it ends."""
        samples = sorted(d for a in self.apps for d in a.deliveries)

        def p99(window: list[float]) -> float | None:
            if not window:
                return None
            window = sorted(window)
            return window[min(len(window) - 1, int(len(window) * 0.99))]

        before = [lat for at, lat in samples if at < fault_at]
        after = [(at - back_at, lat) for at, lat in samples if at >= back_at]
        seconds = int(max((t for t, _ in after), default=0)) + 1
        per_second = [
            p99([lat for t, lat in after if s <= t < s + 1]) for s in range(seconds)
        ]
        # Settled: from this second on, every later second's p99 is under 100 ms.
        settled = None
        for s in range(len(per_second)):
            if all(v is None or v < SETTLED_P99_S for v in per_second[s:]):
                settled = s
                break
        return {
            "p99_before_ms": round((p99(before) or 0) * 1000, 1),
            "p99_per_second_after_ms": [
                None if v is None else round(v * 1000) for v in per_second
            ],
            "settled_after_s": settled,
            "deliveries": len(samples),
        }
