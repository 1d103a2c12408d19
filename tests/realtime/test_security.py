"""Realtime refusals an attacker probed: each through the real interface."""

import asyncio
import re

import aiohttp
import pytest
import socketio

from tests.live import EVENT_TIMEOUT_S, PASSWORD, Peer

pytestmark = pytest.mark.live


async def test_removal_revokes_cached_access_on_sockets_outside_the_room(api, peers):
    owner, member = await api.account(), await api.account()
    bam = await api.bam(owner, member)
    side = await api.bam(owner, member)
    m = await peers(member)
    await m.call("join-bam", side["id"])  # a fence for "the removal has landed"
    # Typing checks (and caches) access without joining the BAM's room.
    assert (await m.call("typing-start", bam["id"]))["ok"]
    await api.request(
        "DELETE",
        f"/bams/{bam['id']}/participants/{member.id}",
        token=owner.access,
        expect=204,
    )
    fence = await api.post_message(owner, side["id"], "after the removal")
    await m.wait_for("new-message", where=lambda e: e["id"] == fence["id"])
    ack = await m.call("typing-start", bam["id"])
    assert ack["ok"] is False and ack["error"]["code"] == "not_found", ack
    ack = await m.call("send-message", {"bamId": bam["id"], "content": "still in?"})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found", ack


async def test_ending_sessions_drops_sockets_and_refuses_old_tokens(api, peers, server):
    me = await api.account()
    other_session = await api.login(me.username)
    peer = await peers(me)
    await api.request(
        "POST", "/auth/logout-all", token=other_session.access, expect=204
    )
    try:
        await asyncio.wait_for(peer.disconnected.wait(), EVENT_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError("a socket outlived the end of its session") from None
    again = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect(
            server.url, auth={"token": me.access}, transports=["websocket"]
        )
    fresh = await api.login(me.username)
    assert (await peers(token=fresh.access)).client.connected


async def test_socket_io_refuses_hosts_django_refuses(server):
    path = "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as session:
        async with session.get(
            server.url + path, headers={"Host": "evil.example"}
        ) as resp:
            assert resp.status == 400, await resp.text()
        async with session.get(server.url + path) as resp:
            assert resp.status == 200 and (await resp.text()).startswith("0")


async def admin_session(base: str, username: str) -> aiohttp.ClientSession:
    """An aiohttp session logged in to the admin through its login form."""
    # Cookies from an IP address (127.0.0.1) are kept only by an "unsafe" jar.
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(f"{base}/admin/login/") as resp:
        page = await resp.text()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    async with session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": username,
            "password": PASSWORD,
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
    ) as resp:
        assert resp.status == 200 and "Log out" in await resp.text(), "login failed"
    return session


@pytest.mark.parametrize("trusted", [False, True])
async def test_the_recorded_address_is_the_clients(api, deployment, trusted):
    server = deployment.start_server(
        f"addr-{trusted}", TRUSTED_PROXIES="127.0.0.1" if trusted else ""
    )
    staff_name = f"addr_staff_{int(trusted)}"
    deployment.create_staff(staff_name)
    me = await api.account()
    peer = Peer(server.url, me.access)
    await peer.connect(headers={"X-Forwarded-For": "203.0.113.9"})
    admin = await admin_session(server.url, staff_name)
    try:
        sid = peer.client.get_sid()
        async with admin.get(
            f"{server.url}/admin/realtime/serverprocess/connections/", params={"q": sid}
        ) as resp:
            page = await resp.text()
        assert sid in page, page[:2000]
        expected, refused = ("203.0.113.9", None) if trusted else ("127.0.0.1", "203")
        assert f"<td>{expected}</td>" in page
        if refused:
            assert "203.0.113.9" not in page, "X-Forwarded-For believed from anyone"
    finally:
        await admin.close()
        await peer.close()
        server.stop()


async def test_one_account_holds_a_bounded_number_of_sockets(api, peers):
    """Past REALTIME_MAX_SOCKETS_PER_USER on a process, a connect is refused."""
    me = await api.account()
    cap = 50  # the default, which the live server runs with
    held = [await peers(me) for _ in range(cap)]
    assert all(p.client.connected for p in held)
    extra = socketio.AsyncClient(reconnection=False)
    refused = asyncio.get_running_loop().create_future()
    extra.on("connect_error", lambda data: refused.set_result(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await extra.connect(
            api.base, auth={"token": me.access}, transports=["websocket"]
        )
    data = await asyncio.wait_for(refused, EVENT_TIMEOUT_S)
    assert data["data"]["code"] == "rate_limited", data
