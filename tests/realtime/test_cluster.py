"""Scale-out: three daphne processes on one Redis and one PostgreSQL.

These tests talk to the real servers of the machine (PostgreSQL on 127.0.0.1:5432,
Redis on 127.0.0.1:6379, database 7) and to a private redis-server they start.
"""

import asyncio
import os
import uuid

import pytest
import pytest_asyncio
import redis
import socketio

from tests.deploy import Deployment
from tests.live import Api, Peer, ci
from tests.services import service_reachable

pytestmark = pytest.mark.services

PG_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
FAST_LIFE = {"REALTIME_HEARTBEAT_INTERVAL_S": "1", "REALTIME_PROCESS_DEAD_AFTER_S": "5"}


def require(what: str, ok: bool) -> None:
    if ok:
        return
    if ci():
        pytest.fail(f"{what} is not reachable on 127.0.0.1; CI must run this suite")
    pytest.skip(f"{what} not reachable on 127.0.0.1: multi-process suite skipped")


@pytest.fixture(scope="module")
def cluster():
    require("PostgreSQL", service_reachable("127.0.0.1", 5432))
    require("Redis", service_reachable("127.0.0.1", 6379))
    redis.Redis.from_url(REDIS_URL).flushdb()
    deployment = Deployment(database_url=PG_URL, redis_url=REDIS_URL, **FAST_LIFE)
    deployment.start_servers("A", "B", "C")
    yield deployment
    deployment.close()
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest_asyncio.fixture
async def nodes(cluster):
    """One REST client per process, and a factory of sockets on a chosen process."""
    apis = [Api(server.url) for server in cluster.servers[:3]]
    made: list[Peer] = []

    async def connect(account, node: int) -> Peer:
        peer = Peer(cluster.servers[node].url, account.access)
        made.append(peer)
        return await peer.connect()

    yield apis, connect
    for peer in made:
        await peer.close()
    for api in apis:
        await api.close()


async def test_messages_reach_every_member_once_in_order_from_any_process(nodes):
    apis, connect = nodes
    alice, bob, carol = [await apis[0].account(n) for n in ("alice", "bob", "carol")]
    bam = await apis[0].bam(alice, bob, carol)
    members = [(alice, 0), (bob, 1), (carol, 2)]
    peers = [await connect(who, node) for who, node in members]
    for peer in peers:
        assert (await peer.call("join-bam", bam["id"]))["ok"]

    async def socket_burst(peer, label):
        for i in range(8):
            ack = await peer.call(
                "send-message", {"bamId": bam["id"], "content": f"{label}{i}"}
            )
            assert ack["ok"], ack

    async def rest_burst(api, who, label):
        for i in range(4):
            await api.post_message(who, bam["id"], f"{label}{i}")

    await asyncio.gather(
        *(socket_burst(p, f"s{n}-") for n, p in enumerate(peers)),
        *(rest_burst(apis[n], who, f"r{n}-") for n, (who, _) in enumerate(members)),
    )
    total = 3 * 8 + 3 * 4
    for peer in peers:
        got = await peer.wait_for("new-message", count=total, timeout=30)
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(1, total + 1)), f"out of order or duplicated: {seqs}"
        assert len({m["id"] for m in got}) == total
    await apis[2].post_message(carol, bam["id"], "last")
    for peer in peers:
        await peer.wait_for("new-message", count=total + 1)
        assert len(peer.got("new-message")) == total + 1, "a message arrived twice"


async def test_room_events_typing_presence_and_notifications_cross_processes(nodes):
    apis, connect = nodes
    alice, bob, carol, dave = [await apis[0].account() for _ in range(4)]
    bam = await apis[1].bam(alice, bob, carol, dave)
    a, b, c = await connect(alice, 0), await connect(bob, 1), await connect(carol, 2)
    await b.call("join-bam", bam["id"])
    await c.call("join-bam", bam["id"])
    await a.call("join-bam", bam["id"])
    for peer in (b, c):
        joined = await peer.wait_for(
            "user-joined-bam", where=lambda e: e["userId"] == alice.id
        )
        assert len(joined) == 1
    await a.call("typing-start", bam["id"])
    await a.call("typing-start", bam["id"])
    for peer in (b, c):
        typing = await peer.wait_for("typing-status", where=lambda e: e["isTyping"])
        assert typing[0]["userId"] == alice.id
    d = await connect(dave, 2)  # connected, but not in the room
    for peer in (a, b, c):
        await peer.wait_for(
            "presence-update",
            where=lambda p: p["userId"] == dave.id and p["status"] == "online",
        )
    assert (await d.call("status-change", "busy"))["ok"]
    for peer in (a, b, c, d):
        await peer.wait_for("presence-update", where=lambda p: p["status"] == "busy")
    message = await apis[0].post_message(alice, bam["id"], "hello dave")
    note = await d.wait_for("notification")
    assert note[0]["messageId"] == message["id"] and len(note) == 1
    await b.call("leave-bam", bam["id"])
    for peer in (a, c):
        await peer.wait_for("user-left-bam", where=lambda e: e["userId"] == bob.id)
    for peer in (b, c):
        assert len(peer.got("typing-status", where=lambda e: e["isTyping"])) == 1


async def test_presence_and_online_lists_agree_on_every_process(nodes):
    apis, connect = nodes
    alice, bob = await apis[0].account(), await apis[0].account()
    bam = await apis[0].bam(alice, bob)
    a = await connect(alice, 0)
    b = await connect(bob, 2)
    await a.call("join-bam", bam["id"])
    await b.call("join-bam", bam["id"])
    await a.call("status-change", "away")
    answers = []
    for api in apis:
        _, presence = await api.request(
            "GET", f"/websocket/presence/{alice.id}", token=bob.access, expect=200
        )
        _, online = await api.request(
            "GET", f"/websocket/bam/{bam['id']}/online", token=bob.access, expect=200
        )
        answers.append((presence["status"], sorted(online["onlineUsers"])))
    assert answers == [("away", sorted([alice.id, bob.id]))] * 3


async def test_staff_broadcast_and_notify_reach_every_process(nodes, cluster):
    apis, connect = nodes
    name = f"staff_{uuid.uuid4().hex[:6]}"
    cluster.create_staff(name)
    staff = await apis[1].login(name)
    users = [await apis[0].account() for _ in range(3)]
    peers = [await connect(user, node) for node, user in enumerate(users)]
    extra = await connect(users[0], 2)
    await apis[1].request(
        "POST",
        "/websocket/broadcast",
        token=staff.access,
        json={"data": {"n": 1}},
        expect=200,
    )
    for peer in [*peers, extra]:
        assert (await peer.wait_for("broadcast"))[0] == {"n": 1}
    _, answer = await apis[2].request(
        "POST",
        "/websocket/notify",
        token=staff.access,
        json={"userId": users[0].id, "data": {"x": 1}},
        expect=200,
    )
    assert answer["sockets"] == 2
    for peer in (peers[0], extra):
        await peer.wait_for("notification", where=lambda e: e == {"x": 1})
    _, stats = await apis[0].request("GET", "/websocket/stats", token=staff.access)
    assert len(stats["processes"]) >= 3
    assert stats["connections"] >= 4


async def test_killed_process_is_reaped_and_its_clients_catch_up(nodes, cluster):
    apis, connect = nodes
    doomed = cluster.start_server("doomed")
    alice, bob = await apis[0].account(), await apis[0].account()
    bam = await apis[0].bam(alice, bob)
    watcher = await connect(alice, 0)
    await watcher.call("join-bam", bam["id"])
    victim = Peer(doomed.url, bob.access)
    await victim.connect()
    await victim.call("join-bam", bam["id"])
    await watcher.wait_for("presence-update", where=lambda p: p["userId"] == bob.id)
    seen = await apis[0].post_message(alice, bam["id"], "before")
    await victim.wait_for("new-message", where=lambda m: m["id"] == seen["id"])

    doomed.kill()
    missed = [
        await apis[1].post_message(alice, bam["id"], f"while down {i}")
        for i in range(3)
    ]
    offline = await watcher.wait_for(
        "presence-update",
        where=lambda p: p["userId"] == bob.id and p["status"] == "offline",
        timeout=60,
    )
    assert offline[0]["lastSeen"]
    _, online = await apis[0].request(
        "GET", f"/websocket/bam/{bam['id']}/online", token=alice.access, expect=200
    )
    assert online["onlineUsers"] == [alice.id]

    again = await connect(bob, 2)
    ack = await again.call("join-bam", {"bamId": bam["id"], "since": seen["id"]})
    assert ack["ok"] and ack["missed"] == 3
    assert [m["id"] for m in again.got("new-message")] == [m["id"] for m in missed]


# -- Redis outage --------------------------------------------------------------------


async def test_redis_restart_keeps_rest_writes_and_realtime_resumes(private_redis):
    require("PostgreSQL", service_reachable("127.0.0.1", 5432))
    deployment = Deployment(
        database_url=PG_URL, redis_url=private_redis.url, **FAST_LIFE
    )
    try:
        one, two = deployment.start_servers("R1", "R2")
        api1, api2 = Api(one.url), Api(two.url)
        alice, bob = await api1.account(), await api1.account()
        bam = await api1.bam(alice, bob)
        a, b = Peer(one.url, alice.access), Peer(two.url, bob.access)
        await a.connect()
        await b.connect()
        await a.call("join-bam", bam["id"])
        await b.call("join-bam", bam["id"])
        first = await api1.post_message(alice, bam["id"], "before outage")
        await b.wait_for("new-message", where=lambda m: m["id"] == first["id"])

        private_redis.stop()
        during = [
            await api1.post_message(alice, bam["id"], f"during {i}") for i in range(5)
        ]
        private_redis.start()

        # Realtime resumes by itself: keep writing until a fresh message gets through.
        after = None
        for attempt in range(40):
            after = await api1.post_message(alice, bam["id"], f"after {attempt}")
            try:
                await b.wait_for(
                    "new-message",
                    where=lambda m, i=after["id"]: m["id"] == i,
                    timeout=1,
                )
                break
            except AssertionError:
                continue
        else:
            pytest.fail(
                "realtime did not resume after Redis came back:\n"
                f"{one.log()}\n{two.log()}"
            )
        # Missed messages were filled in from the database, in order, once each.
        got = [m["id"] for m in b.got("new-message")]
        assert len(got) == len(set(got)), "a message was delivered twice"
        for m in during:
            assert m["id"] in got
        ids = [int(i) for i in got]
        assert ids == sorted(ids)
        rejoin = Peer(two.url, bob.access)
        await rejoin.connect()
        ack = await rejoin.call("join-bam", {"bamId": bam["id"], "since": first["id"]})
        assert ack["ok"] and ack["missed"] >= 6
        for log in (one.log(), two.log()):
            assert log.count("Channel layer unreachable") <= 2, log
        await rejoin.close()
        for peer in (a, b):
            await peer.close()
        await api1.close()
        await api2.close()
    finally:
        deployment.close()


async def test_removed_or_deactivated_users_lose_access_on_every_process(
    nodes, cluster
):
    apis, connect = nodes
    alice, bob, carol = [await apis[0].account() for _ in range(3)]
    bam = await apis[0].bam(alice, bob, carol)
    side = await apis[0].bam(alice, bob)
    b = await connect(bob, 1)
    c = await connect(carol, 2)
    await b.call("join-bam", bam["id"])
    await b.call("join-bam", side["id"])
    await c.call("join-bam", bam["id"])
    await apis[0].request(
        "DELETE",
        f"/bams/{bam['id']}/participants/{bob.id}",
        token=alice.access,
        expect=204,
    )
    await apis[0].post_message(alice, bam["id"], "bob is gone")
    await c.wait_for("new-message", where=lambda m: m["content"] == "bob is gone")
    marker = await apis[2].post_message(alice, side["id"], "fence")
    await b.wait_for("new-message", where=lambda m: m["id"] == marker["id"])
    assert not b.got("new-message", where=lambda m: m["bamId"] == bam["id"])
    assert (await b.call("typing-start", bam["id"]))["error"]["code"] == "not_found"
    await apis[1].request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=404
    )

    cluster.shell(f"u = User.objects.get(pk={carol.id}); u.is_active = False; u.save()")
    await asyncio.wait_for(c.disconnected.wait(), 15)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(carol, 0)


async def test_lifecycle_events_reach_other_processes_and_replay_with_since_seq(
    nodes,
):
    apis, connect = nodes
    alice, bob = await apis[0].account(), await apis[0].account()
    bam = await apis[0].bam(alice, bob)
    a, b = await connect(alice, 0), await connect(bob, 1)
    for peer in (a, b):
        await peer.call("join-bam", bam["id"])
    sent = await a.call("send-message", {"bamId": bam["id"], "content": "first"})
    message_id = sent["message"]["id"]
    await b.wait_for("new-message", where=lambda m: m["id"] == message_id)
    seen = max(m["seq"] for m in b.got("new-message"))
    await b.close()  # bob goes away; changes happen on every process meanwhile

    await a.call("edit-message", {"messageId": message_id, "content": "edited"})
    await apis[1].request(
        "POST",
        f"/bams/{bam['id']}/messages/{message_id}/reactions",
        token=alice.access,
        json={"emoji": "👍"},
        expect=200,
    )
    later = await apis[2].post_message(alice, bam["id"], "later")
    await apis[2].request(
        "DELETE",
        f"/bams/{bam['id']}/messages/{later['id']}",
        token=alice.access,
        expect=204,
    )
    # Bob comes back on another process and replays from the last seq he saw.
    again = await connect(bob, 2)
    ack = await again.call("join-bam", {"bamId": bam["id"], "sinceSeq": seen})
    assert ack["ok"] and ack["missed"] == 4 and ack["lastSeq"] == seen + 4, ack
    replayed = [(name, data["seq"]) for name, data in again.ordered if "seq" in data]
    assert replayed == [
        ("message-updated", seen + 1),
        ("reaction-updated", seen + 2),
        ("new-message", seen + 3),
        ("message-deleted", seen + 4),
    ]
    updated = again.got("message-updated")[0]
    assert updated["content"] == "edited"
    deleted_message = again.got("new-message")[0]
    assert deleted_message["deleted"] is True and deleted_message["content"] is None
    # Live again: a change made on process 0 reaches bob on process 2.
    await a.call("react", {"messageId": message_id, "emoji": "🎉"})
    live = await again.wait_for("reaction-updated", where=lambda e: e["emoji"] == "🎉")
    assert live[0]["seq"] == seen + 5
