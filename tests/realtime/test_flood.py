"""A client that sends faster than its events complete: its acks slow down, then
it is told to slow down; nothing it sent is lost or reordered, and it stays
connected (its reader keeps answering pings)."""

import asyncio
import json

import pytest
import pytest_asyncio

from realtime.namespace import MAX_WAITING_EVENTS
from tests.deploy import Deployment
from tests.live import Api, RawSocket

pytestmark = pytest.mark.live

FLOOD = 200  # send-message frames written back to back, no ack awaited
LIFTED = "1000000"


@pytest.fixture(scope="module")
def unlimited_server():
    """Rate limits lifted: only the waiting-events bound can refuse."""
    deployment = Deployment(
        RATE_SEND_BURST=LIFTED,
        RATE_SEND_PER_S=LIFTED,
        REALTIME_PING_INTERVAL_S="1",
        REALTIME_PING_TIMEOUT_S="2",
    )
    try:
        yield deployment.start_server("flood")
    finally:
        deployment.close()


@pytest_asyncio.fixture
async def api(unlimited_server):
    client = Api(unlimited_server.url)
    yield client
    await client.close()


async def test_a_flood_is_answered_in_order_and_bounded(api, unlimited_server):
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob)
    sock = await RawSocket(unlimited_server.url).connect(alice.access)
    try:
        assert (await sock.call("join-bam", bam["id"]))[0]["ok"]
        first = sock._next_id + 1
        ids = list(range(first, first + FLOOD))
        frames = [
            f"42{i}"
            + json.dumps(["send-message", {"bamId": bam["id"], "content": f"m{i}"}])
            for i in ids
        ]
        for frame in frames:
            await sock.send_text(frame)
        sock._next_id = ids[-1]
        acks: dict[int, dict] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(acks) < FLOOD:
            assert loop.time() < deadline, f"only {len(acks)} of {FLOOD} acks came"
            frame = await sock.receive_text(timeout=deadline - loop.time())
            if frame.startswith("43"):
                head, _, body = frame[2:].partition("[")
                assert int(head) not in acks, f"ack {head} came twice"
                acks[int(head)] = json.loads("[" + body)[0]
        assert sorted(acks) == ids  # every frame answered once: nothing lost

        stored = [i for i in ids if acks[i]["ok"]]
        refused = [i for i in ids if not acks[i]["ok"]]
        assert {acks[i]["error"]["code"] for i in refused} == {"rate_limited"}
        assert all(acks[i]["error"]["retryAfter"] > 0 for i in refused)
        # Frames that came while the bound was full were refused at once
        # instead of queueing. How many depends on how fast the server stores
        # while the frames arrive; with every frame written at once, some are.
        assert MAX_WAITING_EVENTS <= len(stored) < FLOOD, len(stored)
        assert refused, "nothing was refused: the events queued without bound"
        # The stored ones kept the order they were sent in.
        seqs = [acks[i]["message"]["seq"] for i in stored]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert [acks[i]["message"]["content"] for i in stored] == [
            f"m{i}" for i in stored
        ]
        _, history = await api.request(
            "GET", f"/bams/{bam['id']}/messages?limit=200", token=bob.access, expect=200
        )
        assert len(history["results"]) == len(stored)

        # Still connected and usable once the flood has passed.
        again = await sock.call("send-message", {"bamId": bam["id"], "content": "ok"})
        assert again[0]["ok"], again
    finally:
        await sock.close()
