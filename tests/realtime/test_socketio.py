"""The Socket.IO contract end to end: live daphne, python-socketio clients."""

import asyncio
import uuid
from datetime import timedelta

import pytest
import socketio
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.live

MESSAGE_KEYS = {
    "id",
    "bamId",
    "senderId",
    "sender",
    "toUserId",
    "content",
    "text",
    "type",
    "tempId",
    "createdAt",
}


def minted_token(user_id: str, *, seconds: float) -> str:
    """An access token for the user, expiring in ``seconds`` (this run's key)."""
    token = AccessToken()
    token["user_id"] = user_id
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def refused(url: str, **connect_kw) -> dict:
    """Connect expecting a refusal; return the connect_error payload."""
    client = socketio.AsyncClient(reconnection=False)
    errors: asyncio.Queue = asyncio.Queue()
    client.on("connect_error", lambda data: errors.put_nowait(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            url, transports=["websocket"], wait_timeout=10, **connect_kw
        )
    data = await asyncio.wait_for(errors.get(), 10)
    await client.disconnect()
    return data


async def fence(api, peer, account, bam_id):
    """Post a marker message into a BAM ``peer`` has joined and wait for it: every event
    published before it has then been delivered to ``peer`` already."""
    marker = f"fence-{uuid.uuid4().hex[:6]}"
    await api.post_message(account, bam_id, marker)
    await peer.wait_for("new-message", where=lambda m: m["content"] == marker)


# -- handshake -----------------------------------------------------------------------


async def test_token_accepted_in_auth_header_and_query(api, peers, server):
    me = await api.account()
    by_auth = await peers(me)
    header_client = socketio.AsyncClient(reconnection=False)
    await header_client.connect(
        server.url,
        headers={"Authorization": f"Bearer {me.access}"},
        transports=["websocket"],
        wait_timeout=10,
    )
    query_client = socketio.AsyncClient(reconnection=False)
    await query_client.connect(
        f"{server.url}?token={me.access}", transports=["websocket"], wait_timeout=10
    )
    try:
        assert (
            by_auth.client.connected
            and header_client.connected
            and query_client.connected
        )
        _, profile = await api.request("GET", "/auth/me", token=me.access, expect=200)
        assert profile["presence"]["status"] == "online"
    finally:
        await header_client.disconnect()
        await query_client.disconnect()


async def test_refusals_carry_codes(api, server):
    me = await api.account()
    assert (await refused(server.url))["data"]["code"] == "auth_required"
    assert (await refused(server.url, auth={"token": "garbage"}))["data"][
        "code"
    ] == "auth_invalid"
    assert (await refused(server.url, auth={"token": me.refresh}))["data"][
        "code"
    ] == "auth_invalid"
    forged = me.access[:-4] + ("AAAA" if not me.access.endswith("AAAA") else "BBBB")
    assert (await refused(server.url, auth={"token": forged}))["data"][
        "code"
    ] == "auth_invalid"
    expired = minted_token(me.id, seconds=-5)
    data = await refused(server.url, auth={"token": expired})
    assert data["data"]["code"] == "token_expired" and data["message"]
    header = await refused(server.url, headers={"Authorization": "Basic abc"})
    assert header["data"]["code"] == "auth_invalid"


async def test_socket_is_disconnected_when_its_token_expires(api, peers):
    me = await api.account()
    peer = await peers(token=minted_token(me.id, seconds=2))
    await asyncio.wait_for(peer.disconnected.wait(), 10)
    assert peer.got("token-expired"), "no token-expired notice before the disconnect"


# -- rooms ---------------------------------------------------------------------------


async def test_join_and_leave_bam(api, peers):
    alice, bob, carol = (
        await api.account("alice"),
        await api.account("bob"),
        await api.account("carol"),
    )
    bam = await api.bam(alice, bob, carol)
    a, b = await peers(alice), await peers(bob)
    ack = await a.call("join-bam", bam["id"])
    assert ack == {
        "ok": True,
        "bamId": bam["id"],
        "onlineUsers": [alice.id],
        "missed": 0,
        "lastSeq": 0,
    }
    ack = await b.call("join-bam", {"bamId": int(bam["id"])})
    assert ack["ok"] and sorted(ack["onlineUsers"], key=int) == sorted(
        [alice.id, bob.id], key=int
    )
    joined = await a.wait_for("user-joined-bam")
    assert joined[0]["bamId"] == bam["id"] and joined[0]["userId"] == bob.id
    assert joined[0]["username"] == bob.username and joined[0]["at"].endswith("Z")
    assert not b.got("user-joined-bam"), "the joiner was told about its own join"

    assert await b.call("leave-bam", bam["id"]) == {"ok": True, "bamId": bam["id"]}
    left = await a.wait_for("user-left-bam")
    assert left[0] == {
        **left[0],
        "bamId": bam["id"],
        "userId": bob.id,
        "username": bob.username,
    }
    # After leaving, bob gets no more messages from the room.
    c = await peers(carol)
    await c.call("join-bam", bam["id"])
    await api.post_message(alice, bam["id"], "after bob left")
    await c.wait_for("new-message", where=lambda m: m["content"] == "after bob left")
    await b.call("join-bam", bam["id"])
    await fence(api, b, alice, bam["id"])
    assert not b.got("new-message", where=lambda m: m["content"] == "after bob left")


async def test_join_with_since_replays_missed_messages_in_order_before_the_ack(
    api, peers
):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    first = await api.post_message(alice, bam["id"], "seen")
    missed = [await api.post_message(alice, bam["id"], f"missed {i}") for i in range(5)]
    b = await peers(bob)
    ack = await b.call("join-bam", {"bamId": bam["id"], "since": first["id"]})
    assert ack["ok"] and ack["missed"] == 5
    got = b.got("new-message")  # already there: replay comes before the ack
    assert [m["id"] for m in got] == [m["id"] for m in missed]
    live = await api.post_message(alice, bam["id"], "live")
    await b.wait_for("new-message", count=6)
    assert [m["id"] for m in b.got("new-message")] == [m["id"] for m in [*missed, live]]
    bad = await b.call("join-bam", {"bamId": bam["id"], "since": "999999999"})
    assert bad["ok"] is False and bad["error"]["code"] == "not_found"


# -- messages ------------------------------------------------------------------------


async def test_send_message_is_persisted_and_reaches_the_room_sender_included(
    api, peers
):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await a.call("join-bam", bam["id"])
    await b.call("join-bam", bam["id"])
    ack = await a.call(
        "send-message",
        {
            "bamId": bam["id"],
            "content": " hi bob ",
            "tempId": "c-1",
            "toUserId": bob.id,
        },
    )
    assert ack["ok"] is True
    message = ack["message"]
    assert set(message) >= MESSAGE_KEYS
    assert message["content"] == message["text"] == "hi bob"
    assert (
        message["tempId"] == "c-1"
        and message["toUserId"] == bob.id
        and message["type"] == "text"
    )
    assert message["sender"] == {"id": alice.id, "username": alice.username}
    for peer in (a, b):
        assert (await peer.wait_for("new-message"))[0] == message
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    assert history["results"][0] == message


async def test_same_temp_id_gives_the_same_message_and_no_second_event(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await b.call("join-bam", bam["id"])
    one = await a.call(
        "send-message", {"bamId": bam["id"], "content": "once", "tempId": "dup"}
    )
    two = await a.call(
        "send-message", {"bamId": bam["id"], "content": "once", "tempId": "dup"}
    )
    assert one["ok"] and two["ok"] and two["message"] == one["message"]
    await fence(api, b, alice, bam["id"])
    assert len(b.got("new-message", where=lambda m: m["content"] == "once")) == 1
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    assert [m["content"] for m in history["results"]].count("once") == 1


async def test_rest_and_socket_writes_produce_the_same_event(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    b = await peers(bob)
    await b.call("join-bam", bam["id"])
    posted = await api.post_message(alice, bam["id"], "via rest", tempId="r-1")
    a = await peers(alice)
    sent = (
        await a.call(
            "send-message",
            {"bamId": bam["id"], "content": "via socket", "tempId": "s-1"},
        )
    )["message"]
    got = await b.wait_for("new-message", count=2)
    assert got == [posted, sent]
    assert set(posted) == set(sent)


async def test_notification_for_participants_connected_outside_the_room(api, peers):
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    bam = await api.bam(alice, bob, carol)
    in_room, elsewhere = await peers(bob), await peers(carol)
    await in_room.call("join-bam", bam["id"])
    message = await api.post_message(alice, bam["id"], "ping " + "x" * 200)
    note = (await elsewhere.wait_for("notification"))[0]
    assert note["type"] == "new-message" and note["bamId"] == bam["id"]
    assert note["messageId"] == message["id"] and note["senderId"] == alice.id
    assert note["preview"].startswith("ping ") and len(note["preview"]) <= 100
    await in_room.wait_for("new-message")
    await elsewhere.call("join-bam", bam["id"])
    await fence(api, elsewhere, alice, bam["id"])
    assert not in_room.got("notification"), (
        "a socket in the room also got a notification"
    )
    assert not elsewhere.got("new-message", where=lambda m: m["id"] == message["id"])


# -- typing --------------------------------------------------------------------------


async def test_typing_start_stop_and_flood_gives_one_event_per_change(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await a.call("join-bam", bam["id"])
    await b.call("join-bam", bam["id"])
    for _ in range(8):
        assert (await a.call("typing-start", bam["id"]))["ok"] is True
    assert (await a.call("typing-stop", bam["id"]))["ok"] is True
    assert (await a.call("typing-stop", bam["id"]))["ok"] is True
    got = await b.wait_for("typing-status", count=2)
    assert got == [
        {
            "bamId": bam["id"],
            "userId": alice.id,
            "username": alice.username,
            "isTyping": True,
        },
        {
            "bamId": bam["id"],
            "userId": alice.id,
            "username": alice.username,
            "isTyping": False,
        },
    ]
    await fence(api, b, alice, bam["id"])
    assert len(b.got("typing-status")) == 2
    assert not a.got("typing-status"), "the typist was told about their own typing"


async def test_typing_expires_by_itself(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await b.call("join-bam", bam["id"])
    await a.call("join-bam", bam["id"])
    await a.call("typing-start", {"bamId": bam["id"]})
    got = await b.wait_for("typing-status", count=2, timeout=9)
    assert [e["isTyping"] for e in got] == [True, False]


# -- presence ------------------------------------------------------------------------


async def test_presence_goes_to_self_and_co_participants_only(api, peers):
    alice, bob, stranger = await api.account(), await api.account(), await api.account()
    await api.bam(alice, bob)
    own = await api.bam(stranger)
    b, s = await peers(bob), await peers(stranger)
    await s.call("join-bam", own["id"])
    a = await peers(alice)
    online = await b.wait_for(
        "presence-update", where=lambda p: p["userId"] == alice.id
    )
    assert online[0]["status"] == "online" and online[0]["lastSeen"].endswith("Z")
    ack = await a.call("status-change", "busy")
    assert ack == {"ok": True, "status": "busy"}
    await b.wait_for(
        "presence-update",
        where=lambda p: p["userId"] == alice.id and p["status"] == "busy",
    )
    await a.wait_for("presence-update", where=lambda p: p["status"] == "busy")
    assert (await a.call("status-change", {"status": "away"}))["status"] == "away"
    await b.wait_for("presence-update", where=lambda p: p["status"] == "away")
    bad = await a.call("status-change", "offline")
    assert bad["ok"] is False and bad["error"]["code"] == "invalid"
    await fence(api, s, stranger, own["id"])
    assert not s.got("presence-update", where=lambda p: p["userId"] == alice.id)


async def test_offline_only_when_the_last_socket_goes(api, peers):
    alice, bob = await api.account(), await api.account()
    await api.bam(alice, bob)
    b = await peers(bob)
    phone, laptop = await peers(alice), await peers(alice)
    await b.wait_for(
        "presence-update",
        where=lambda p: p["userId"] == alice.id and p["status"] == "online",
    )
    await phone.close()
    _, presence = await api.request("GET", "/auth/me", token=alice.access, expect=200)
    assert presence["presence"]["status"] == "online"
    await laptop.close()
    offline = await b.wait_for(
        "presence-update",
        where=lambda p: p["userId"] == alice.id and p["status"] == "offline",
    )
    assert offline[0]["lastSeen"]
    assert len(b.got("presence-update", where=lambda p: p["userId"] == alice.id)) == 2


# -- outsiders and bad input ---------------------------------------------------------


async def test_outsiders_are_refused_and_learn_nothing(api, peers):
    alice, bob, mallory = await api.account(), await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    own = await api.bam(mallory)
    m = await peers(mallory)
    await m.call("join-bam", own["id"])
    for event, payload in [
        ("join-bam", bam["id"]),
        ("typing-start", bam["id"]),
        ("typing-stop", bam["id"]),
        ("send-message", {"bamId": bam["id"], "content": "let me in"}),
        ("join-bam", "999999999"),
    ]:
        ack = await m.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", (event, ack)
    assert (await m.call("leave-bam", bam["id"]))["error"]["code"] == "not_found"
    await api.post_message(alice, bam["id"], "secret")
    await fence(api, m, mallory, own["id"])
    assert not m.got("new-message", where=lambda e: e["bamId"] == bam["id"])
    assert not m.got("notification") and not m.got("typing-status")
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=alice.access, expect=200
    )
    assert [x["content"] for x in history["results"]] == ["secret"]


BAD_PAYLOADS = {
    "join-bam": [
        None,
        [],
        {},
        {"bamId": None},
        {"bamId": []},
        True,
        1.5,
        "x" * 10000,
        {"bamId": "1", "since": []},
    ],
    "leave-bam": [None, [], {}, {"bamId": {"$gt": 1}}, "abc"],
    "send-message": [
        None,
        "text",
        [],
        {},
        {"bamId": "BAM"},
        {"bamId": "BAM", "content": 5},
        {"bamId": "BAM", "content": None},
        {"bamId": "BAM", "content": ["a"]},
        {"bamId": "BAM", "content": "   "},
        {"bamId": "BAM", "content": "x" * 4001},
        {"bamId": "BAM", "content": "ok", "type": "video"},
        {"bamId": "BAM", "content": "ok", "tempId": {"a": 1}},
        {"bamId": "BAM", "content": "ok", "toUserId": "999999"},
        {"bamId": "BAM", "content": "ok", "toUserId": [1]},
        {"bamId": "BAM", "content": {"nested": {"deep": [1, 2, 3]}}},
    ],
    "typing-start": [None, [], {}, 2**70],
    "typing-stop": [None, {"bamId": False}],
    "status-change": [None, 5, "sleeping", {"status": None}, [], "x" * 5000],
}


async def test_bad_input_gets_coded_acks_keeps_the_connection_and_stores_nothing(
    api, peers
):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await b.call("join-bam", bam["id"])
    for event, payloads in BAD_PAYLOADS.items():
        for payload in payloads:
            if isinstance(payload, dict) and payload.get("bamId") == "BAM":
                payload = {**payload, "bamId": bam["id"]}
            ack = await a.call(event, payload)
            assert ack["ok"] is False, (event, payload, ack)
            assert ack["error"]["code"] in ("invalid", "not_found"), (
                event,
                payload,
                ack,
            )
            assert ack["error"]["message"]
    assert (await a.call("no-such-event", {"x": 1}))["error"]["code"] == "invalid"
    assert (await a.call("send-message"))["error"]["code"] == "invalid"
    assert a.client.connected
    ok = await a.call("send-message", {"bamId": bam["id"], "content": "still here"})
    assert ok["ok"] is True
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    assert [m["content"] for m in history["results"]] == ["still here"]
    await b.wait_for("new-message")
    assert len(b.got("new-message")) == 1


# -- transports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "transports", [["websocket"], ["polling"], ["polling", "websocket"]]
)
async def test_every_transport_carries_the_contract(api, peers, transports):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    b = await peers(bob, transports=transports)
    assert (await b.call("join-bam", bam["id"]))["ok"] is True
    posted = await api.post_message(alice, bam["id"], f"over {'+'.join(transports)}")
    assert (await b.wait_for("new-message"))[0] == posted
    sent = await b.call("send-message", {"bamId": bam["id"], "content": "back"})
    assert sent["ok"] is True
    # The client upgrades during connect when WebSocket is allowed.
    assert b.client.transport() == transports[-1]


# -- staff pushes --------------------------------------------------------------------


async def test_staff_notify_and_broadcast_reach_sockets(api, peers, deployment):
    staff_name = f"staff_{uuid.uuid4().hex[:6]}"
    deployment.create_staff(staff_name)
    staff = await api.login(staff_name)
    alice, bob = await api.account(), await api.account()
    a1, a2, b = await peers(alice), await peers(alice), await peers(bob)
    _, answer = await api.request(
        "POST",
        "/websocket/notify",
        token=staff.access,
        json={"userId": alice.id, "data": {"title": "hi"}},
        expect=200,
    )
    assert answer["online"] is True and answer["sockets"] == 2
    for peer in (a1, a2):
        assert (await peer.wait_for("notification"))[0] == {"title": "hi"}
    _, answer = await api.request(
        "POST",
        "/websocket/broadcast",
        token=staff.access,
        json={"data": {"maintenance": "soon"}},
        expect=200,
    )
    for peer in (a1, a2, b):
        assert (await peer.wait_for("broadcast"))[0] == {"maintenance": "soon"}
    assert not b.got("notification")


async def test_health_reports_database_listener_and_heartbeat(
    api, peers, server, deployment
):
    me = await api.account()
    await peers(me)
    status, health = await api.request("GET", "/health")
    assert status == 200 and health == {"ok": True}, "anonymous callers see details"
    staff_name = f"staff_{uuid.uuid4().hex[:6]}"
    deployment.create_staff(staff_name)
    staff = await api.login(staff_name)
    status, health = await api.request("GET", "/health", token=staff.access)
    assert status == 200 and health["ok"] is True
    assert health["database"] is True and health["listener"] is True
    assert health["heartbeat"] is True and health["layerDown"] is False
    assert health["sockets"] >= 1
