"""A hostile client speaking raw Engine.IO frames: what the contract does not allow
is refused, and nothing it sends changes the server's state or holds its memory."""

import asyncio
import json

import pytest
import socketio

from tests.live import RawSocket

pytestmark = pytest.mark.live


@pytest.fixture
async def raw(server):
    made: list[RawSocket] = []

    async def connect(account) -> RawSocket:
        sock = RawSocket(server.url)
        made.append(sock)
        return await sock.connect(account.access)

    yield connect
    for sock in made:
        await sock.close()


async def presence_of(api, viewer, user) -> dict:
    _, body = await api.request(
        "GET", f"/websocket/presence/{user.id}", token=viewer.access, expect=200
    )
    return body


@pytest.mark.parametrize(
    "event, args",
    [
        ("disconnect", []),
        ("disconnect", ["client namespace disconnect"]),
        ("connect", [{"REMOTE_ADDR": "10.0.0.1"}, {"token": "forged"}]),
        ("connect_error", [{"message": "x"}]),
    ],
)
async def test_lifecycle_names_sent_as_events_are_refused_and_change_nothing(
    api, peers, raw, event, args
):
    alice, bob = await api.account("alice"), await api.account("bob")
    bam = await api.bam(alice, bob)
    a = await raw(alice)
    assert (await a.call("join-bam", bam["id"]))[0]["ok"]
    b = await peers(bob)
    await b.call("join-bam", bam["id"])

    ack = await a.call(event, *args)
    assert ack[0]["ok"] is False and ack[0]["error"]["code"] == "invalid", ack

    # The socket is still connected, in its room, and its user still online.
    assert (await presence_of(api, bob, alice))["status"] == "online"
    sent = await b.call("send-message", {"bamId": bam["id"], "content": "still?"})
    assert sent["ok"], sent
    ack = await a.call("send-message", {"bamId": bam["id"], "content": "yes"})
    assert ack[0]["ok"], f"the socket lost its state after a fake {event!r}: {ack}"
    _, online = await api.request(
        "GET", f"/websocket/bam/{bam['id']}/online", token=bob.access, expect=200
    )
    assert alice.id in online["onlineUsers"]
    assert not b.got("presence-update", where=lambda e: e["status"] == "offline")


async def test_a_binary_event_is_refused_at_once_without_waiting_for_attachments(
    api, raw
):
    alice = await api.account()
    bam = await api.bam(alice)
    a = await raw(alice)
    placeholder = {"_placeholder": True, "num": 0}
    # A header announcing 1000 attachments: the server must not wait for (and
    # hold) them, but answer the ack at once.
    await a.send_text(
        "451000-7" + json.dumps(["send-message", {"bamId": bam["id"]}, placeholder])
    )
    ack = await a.ack(7, timeout=5)
    assert ack[0]["ok"] is False and ack[0]["error"]["code"] == "invalid", ack
    # Attachments sent anyway are dropped; the socket keeps working.
    for _ in range(20):
        await a.send_bytes(b"\x00" * 60_000)
    ack = await a.call("send-message", {"bamId": bam["id"], "content": "text only"})
    assert ack[0]["ok"], ack
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=alice.access, expect=200
    )
    assert [m["content"] for m in history["results"]] == ["text only"]


async def test_an_undecodable_packet_closes_that_socket_at_once(api, peers, raw):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a = await raw(alice)
    b = await peers(bob)
    await b.call("join-bam", bam["id"])
    await a.send_text("42{not json")
    assert await a.closed_within(3), "a garbled packet left the socket open"
    ack = await b.call("send-message", {"bamId": bam["id"], "content": "unharmed"})
    assert ack["ok"], ack


async def test_message_is_an_unknown_event_refused_with_a_coded_ack(api, peers, raw):
    """``socket.send()`` emits ``message``: not reserved in Socket.IO 4, so it is
    answered like any event the contract does not define."""
    alice = await api.account("alice")
    a = await raw(alice)

    ack = await a.call("message", "hello")

    assert ack[0]["ok"] is False and ack[0]["error"]["code"] == "invalid", ack
    assert ack[0]["error"]["message"] == "Unknown event 'message'.", ack
    assert (await a.call("status-change", "away"))[0]["ok"]
    peer = await peers(alice)
    ack = await peer.call("message", {"text": "hi"})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack


@pytest.fixture(scope="module")
def fractional_heartbeat(deployment):
    return deployment.start_server(
        "heartbeat", REALTIME_PING_INTERVAL_S="2.5", REALTIME_PING_TIMEOUT_S="1.25"
    )


async def test_handshake_announces_a_fractional_heartbeat_exactly(
    fractional_heartbeat, api
):
    url = fractional_heartbeat.url + "/socket.io/?EIO=4&transport=polling"
    async with api.session.get(url) as resp:
        body = await resp.text()

    assert resp.status == 200 and body.startswith("0"), body
    opened = json.loads(body[1:])
    assert (opened["pingInterval"], opened["pingTimeout"]) == (2500, 1250), opened


async def test_a_polling_client_that_disconnects_is_let_go_at_once(server, api):
    """Engine.IO over long-polling: the client's close packet answers the GET it
    has waiting (as the reference server does), instead of leaving it open until
    the heartbeat gives up on it; python-socketio's client waits for that GET
    before its ``disconnect()`` returns (30 s when nobody answers it)."""
    me = await api.account()
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url, auth={"token": me.access}, transports=["polling"], wait_timeout=5
    )
    try:
        await asyncio.wait_for(client.disconnect(), 10)
    except TimeoutError:
        pytest.fail("the client's waiting poll was not answered after it closed")
    assert not client.connected
