"""A clean stop: SIGTERM with live sockets on a process of a cluster.

Two daphne processes on PostgreSQL and a private Redis behind a loopback proxy
that sends new connections to the first process that answers.
"""

import asyncio
import time

import pytest

from tests.live import EVENT_TIMEOUT_S, Api, ChatApp, Peer
from tests.services import FailoverProxy

pytestmark = [pytest.mark.services, pytest.mark.live]


async def test_sigterm_with_live_sockets_exits_fast_and_loses_nobody(private_stack):
    stack, _ = private_stack
    first, second = stack.start_servers("A", "B")
    proxy = await FailoverProxy([first.port, second.port]).start()
    api = Api(second.url)
    staff_name = "ops_shutdown"
    stack.create_staff(staff_name)
    staff = await api.login(staff_name)
    stayer, leaver, watcher = [await api.account(n) for n in ("stay", "leave", "watch")]
    bam = await api.bam(watcher, stayer, leaver)
    app = await ChatApp(proxy.url, stayer.access, bam["id"]).start()
    gone = Peer(first.url, leaver.access)
    await gone.connect()
    await gone.call("join-bam", bam["id"])
    watching = Peer(second.url, watcher.access)
    await watching.connect()
    await watching.call("join-bam", bam["id"])
    before = await api.post_message(watcher, bam["id"], "before the stop")
    await app.wait_seq(before["seq"])
    _, stats = await api.request("GET", "/websocket/stats", token=staff.access)
    assert len(stats["processes"]) == 2

    started = time.monotonic()
    first.process.terminate()
    # Messages keep coming while the stopping process drains.
    during = [
        await api.post_message(watcher, bam["id"], f"during {i}") for i in range(3)
    ]
    code = await asyncio.to_thread(first.process.wait, 15)
    exited = time.monotonic() - started
    assert exited <= 10, f"SIGTERM took {exited:.1f}s:\n{first.log()}"
    assert code == 0 or code == -15, f"exit code {code}:\n{first.log()}"

    offline = await watching.wait_for(
        "presence-update",
        where=lambda e: e["userId"] == leaver.id and e["status"] == "offline",
        timeout=max(0.5, 5 - (time.monotonic() - started - exited)),
    )
    assert offline, "the user whose only socket was there is still online"
    _, stats = await api.request("GET", "/websocket/stats", token=staff.access)
    assert [p["id"] for p in stats["processes"]] != [] and len(stats["processes"]) == 1

    await asyncio.wait_for(app.rejoined.wait(), EVENT_TIMEOUT_S)
    after = await api.post_message(watcher, bam["id"], "after the stop")
    await app.wait_seq(after["seq"])
    expected = list(range(1, after["seq"] + 1))
    assert app.seqs == expected, f"missed or repeated across the stop: {app.seqs}"
    assert {m["seq"] for m in during} <= set(app.seqs)
    _, presence = await api.request(
        "GET", f"/websocket/presence/{stayer.id}", token=watcher.access, expect=200
    )
    assert presence["status"] == "online", "the user who came back is not online"

    await app.client.disconnect()
    for peer in (gone, watching):
        await peer.close()
    await api.close()
    await proxy.close()
