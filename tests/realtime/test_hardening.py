"""Abuse, limits and auth edge cases against a live process."""

import asyncio
import base64
import json
import time

import aiohttp
import pytest
import socketio

from tests.live import PASSWORD, Peer
from tests.realtime.test_socketio import refused

pytestmark = pytest.mark.live


def unsigned_token(user_id: str) -> str:
    """A JWT with ``alg: none`` claiming to be the user."""

    def part(obj) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {
        "token_type": "access",
        "exp": int(time.time()) + 600,
        "iat": int(time.time()),
        "jti": "x" * 32,
        "user_id": user_id,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_flooding_sender_is_rate_limited_and_others_lose_nothing(api, peers):
    flooder, alice, bob = await api.account(), await api.account(), await api.account()
    bam = await api.bam(alice, bob, flooder)
    f, a, b = await peers(flooder), await peers(alice), await peers(bob)
    await b.call("join-bam", bam["id"])

    async def flood():
        return [
            await f.call("send-message", {"bamId": bam["id"], "content": f"spam {i}"})
            for i in range(40)
        ]

    async def chat():
        return [
            await a.call("send-message", {"bamId": bam["id"], "content": f"real {i}"})
            for i in range(10)
        ]

    flood_acks, chat_acks = await asyncio.gather(flood(), chat())
    assert all(ack["ok"] for ack in chat_acks)
    limited = [ack for ack in flood_acks if not ack["ok"]]
    assert limited, "40 messages in a burst were never rate limited"
    assert all(ack["error"]["code"] == "rate_limited" for ack in limited)
    assert all(ack["error"]["retryAfter"] > 0 for ack in limited)
    assert sum(ack["ok"] for ack in flood_acks) < 40
    assert f.client.connected, "the rate-limited client was disconnected"
    await b.wait_for(
        "new-message", where=lambda m: m["content"].startswith("real"), count=10
    )
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages?limit=200", token=bob.access, expect=200
    )
    stored = [m["content"] for m in history["results"]]
    assert all(f"real {i}" in stored for i in range(10))
    assert len([c for c in stored if c.startswith("spam")]) == sum(
        ack["ok"] for ack in flood_acks
    )


async def test_oversized_packet_closes_only_that_socket(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a, b = await peers(alice), await peers(bob)
    await b.call("join-bam", bam["id"])
    await a.client.emit("send-message", {"bamId": bam["id"], "content": "x" * 100_000})
    await asyncio.wait_for(a.disconnected.wait(), 10)
    ack = await b.call("send-message", {"bamId": bam["id"], "content": "still fine"})
    assert ack["ok"]
    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    assert [m["content"] for m in history["results"]] == ["still fine"]


async def test_content_over_4000_characters_is_too_long_not_stored(api, peers):
    alice, bob = await api.account(), await api.account()
    bam = await api.bam(alice, bob)
    a = await peers(alice)
    ack = await a.call("send-message", {"bamId": bam["id"], "content": "y" * 4001})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert a.client.connected


async def test_forged_unsigned_and_deleted_user_tokens_are_refused(
    api, server, deployment
):
    me = await api.account()
    data = await refused(server.url, auth={"token": unsigned_token(me.id)})
    assert data["data"]["code"] == "auth_invalid"
    ghost = await api.account("ghost")
    deployment.shell(f"User.objects.filter(pk={ghost.id}).delete()")
    data = await refused(server.url, auth={"token": ghost.access})
    assert data["data"]["code"] == "auth_invalid"


async def test_tokens_never_reach_the_logs(api, server, peers):
    me = await api.account()
    query = socketio.AsyncClient(reconnection=False)
    await query.connect(f"{server.url}?token={me.access}", transports=["websocket"])
    await query.disconnect()
    await refused(server.url, auth={"token": me.refresh})
    await api.request("GET", "/auth/me", token=me.refresh)
    async with aiohttp.ClientSession() as session:
        await session.post(
            server.url + "/auth/token",
            json={"username": me.username, "password": "nope"},
        )
    log = "".join(server.log_lines)
    for secret in (me.access, me.refresh, PASSWORD, me.access.split(".")[2]):
        assert secret not in log


async def test_cross_origin_browsers_are_refused(api, server):
    me = await api.account()
    evil = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await evil.connect(
            server.url,
            auth={"token": me.access},
            headers={"Origin": "http://evil.example"},
            transports=["polling"],
            wait_timeout=5,
        )
    same = socketio.AsyncClient(reconnection=False)
    await same.connect(
        server.url,
        auth={"token": me.access},
        headers={"Origin": server.url},
        transports=["polling"],
        wait_timeout=5,
    )
    assert same.connected
    await same.disconnect()
    async with aiohttp.ClientSession() as session:
        async with session.options(
            server.url + "/bams",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        ) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers


@pytest.fixture(scope="module")
def cors_server(deployment):
    return deployment.start_server("cors", CORS_ALLOWED_ORIGINS="http://app.example")


async def test_configured_origins_may_connect_and_others_may_not(api, cors_server):
    me = await api.account()
    ok = Peer(cors_server.url, me.access, ["polling"])
    await ok.client.connect(
        cors_server.url,
        auth={"token": me.access},
        headers={"Origin": "http://app.example"},
        transports=["websocket"],
        wait_timeout=5,
    )
    assert ok.client.connected
    await ok.close()
    bad = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(
            cors_server.url,
            auth={"token": me.access},
            headers={"Origin": "http://evil.example"},
            transports=["websocket"],
            wait_timeout=5,
        )
    async with aiohttp.ClientSession() as session:
        headers = {
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "POST",
        }
        async with session.options(cors_server.url + "/bams", headers=headers) as resp:
            assert (
                resp.headers.get("Access-Control-Allow-Origin") == "http://app.example"
            )
        headers["Origin"] = "http://evil.example"
        async with session.options(cors_server.url + "/bams", headers=headers) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
