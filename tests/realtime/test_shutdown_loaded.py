"""A rolling deploy at scale: SIGTERM to a process holding 3,000 joined sockets.

Two daphne processes on PostgreSQL and a private Redis. Process A holds 3,000
sockets of 1,500 users (two each, every one joined to its BAM); 300 of those
users also have a socket on process B. A watcher on B shares a BAM with all of
them. After SIGTERM to A: A exits by itself within its drain limit, the cluster
view forgets A's sockets and never shows them again, every user whose sockets
were all on A is announced offline once, and no user who still has a socket on
B is.
"""

import asyncio
import logging
import time

import pytest
import redis

from tests.live import Api, Peer
from tests.swarm import Swarm, populate

pytestmark = [pytest.mark.services, pytest.mark.live]

logger = logging.getLogger(__name__)

USERS = 1500
SOCKETS_PER_USER = 2
ALSO_ON_B = 300  # users with one more socket on the survivor
BAM_SIZE = 10
# Waiting for figures that the targets put at a few seconds; these are
# only how long the test waits before it fails with what is missing.
WAIT_S = 30


async def _wait_until(predicate, *, timeout: float, what: str, every: float = 0.05):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(every)  # polling a server-side state, not an event


def _view_sids_of(client: redis.Redis, process_id: str) -> int:
    """How many entries of the cluster view still name the process."""
    found = 0
    if client.exists(f"bamchat:rt:sockets:{process_id}"):
        found += client.hlen(f"bamchat:rt:sockets:{process_id}")
    for key in client.scan_iter(match="bamchat:rt:user:*", count=1000):
        found += sum(1 for p in client.hvals(key) if p.decode() == process_id)
    return found


@pytest.mark.timeout(600)
async def test_sigterm_with_3000_sockets(private_stack):
    stack, redis_server = private_stack
    first, second = stack.start_servers("A", "B")
    people = populate(stack.env, users=USERS, bam_size=BAM_SIZE, prefix="deploy")
    bam_of = {u: b["id"] for b in people.bams for u in b["members"]}
    api = Api(second.url)
    stack.create_staff("ops_loaded")
    staff = await api.login("ops_loaded")
    watcher = Peer(second.url, people.watcher["access"])
    await watcher.connect()

    swarm = Swarm()
    setup = time.monotonic()
    on_a = [u for u in people.users for _ in range(SOCKETS_PER_USER)]
    on_b = people.users[:ALSO_ON_B]
    sockets_a = await swarm.connect_all(first.url, [u["access"] for u in on_a])
    sockets_b = await swarm.connect_all(second.url, [u["access"] for u in on_b])
    logger.warning(
        "%d sockets connected in %.1fs", len(swarm.sockets), time.monotonic() - setup
    )
    acks = await swarm.call_all(
        [
            (sock, "join-bam", {"bamId": bam_of[user["id"]]})
            for sock, user in zip(sockets_a + sockets_b, on_a + on_b, strict=True)
        ],
        timeout=WAIT_S,
    )
    logger.warning(
        "%d sockets connected and joined in %.1fs", len(acks), time.monotonic() - setup
    )
    assert all(a.get("ok") for a in acks), [a for a in acks if not a.get("ok")][:3]

    async def stats():
        return (await api.request("GET", "/websocket/stats", token=staff.access))[1]

    total = len(sockets_a) + len(sockets_b) + 1
    await _wait_until(
        lambda: _connections_are(stats, total),
        timeout=WAIT_S,
        what=f"{total} sockets in the cluster view",
    )
    process_a = next(
        p["id"]
        for p in (await stats())["processes"]
        if p["connections"] == len(sockets_a)
    )
    offline = {u["id"] for u in people.users[ALSO_ON_B:]}
    staying = {u["id"] for u in people.users[:ALSO_ON_B]}
    announced: dict[str, float] = {}

    started = time.monotonic()
    first.process.terminate()

    async def view_forgot_a():
        return (await stats())["connections"] == len(sockets_b) + 1

    await _wait_until(view_forgot_a, timeout=WAIT_S, what="the view dropping A")
    view_dropped = time.monotonic() - started
    code = await asyncio.to_thread(first.process.wait, WAIT_S)
    exited = time.monotonic() - started
    log = first.log()
    assert code in (0, -15), f"exit code {code}:\n{log[-3000:]}"
    assert "Clean stop did not finish" not in log, log[-3000:]
    assert "written back" not in log, f"a stopping process rewrote the view:\n{log}"

    events = await watcher.wait_for(
        "presence-update",
        count=len(offline),
        where=lambda e: e["status"] == "offline" and e["userId"] in offline,
        timeout=WAIT_S,
    )
    for event in watcher.events["presence-update"]:
        if event["status"] == "offline":
            announced.setdefault(event["userId"], time.monotonic() - started)
    assert {e["userId"] for e in events} == offline
    wrongly = [
        e
        for e in watcher.got("presence-update")
        if e["userId"] in staying and e["status"] == "offline"
    ]
    assert not wrongly, f"users still on B announced offline: {wrongly[:5]}"
    repeated = len(events) - len({e["userId"] for e in events})
    assert repeated == 0, f"{repeated} offline announcements repeated"

    client = redis.Redis.from_url(redis_server.url)
    assert await asyncio.to_thread(_view_sids_of, client, process_a) == 0
    final = await stats()
    assert final["connections"] == len(sockets_b) + 1, final["connections"]
    for user_id in list(staying)[:20]:
        _, presence = await api.request(
            "GET", f"/websocket/presence/{user_id}", token=staff.access, expect=200
        )
        assert presence["status"] == "online", (user_id, presence)
    assert all(s.closed.is_set() for s in sockets_a), "A left sockets open"

    slowest = max(announced.values())
    logger.warning(
        "SIGTERM with %d sockets: exited %.2fs, view dropped %.2fs, "
        "last offline %.2fs (after SIGTERM)",
        len(sockets_a),
        exited,
        view_dropped,
        slowest,
    )
    client.close()
    await watcher.close()
    await swarm.close()
    await api.close()


async def _connections_are(stats, total: int) -> bool:
    return (await stats())["connections"] == total
