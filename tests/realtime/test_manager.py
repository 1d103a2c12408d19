"""The channel-layer client manager in process: listener supervision and ordering."""

import asyncio
import logging

from realtime.manager import ChannelLayerManager
from realtime.server import BamSocketServer


async def wait_until(predicate, what: str, timeout: float = 5) -> None:
    """Yield to the loop until ``predicate()`` holds; fail with ``what`` otherwise."""

    async def poll():
        while not predicate():
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout}s") from None


async def test_a_stopped_listener_is_logged_restarted_and_reported(caplog):
    server = BamSocketServer()
    manager: ChannelLayerManager = server.manager
    real_listen = manager._listen
    calls = {"n": 0}

    async def listen_once_then_stop():
        calls["n"] += 1
        if calls["n"] == 1:
            return  # the listener ends: the pub/sub loop exits "unexpectedly"
            yield
        async for message in real_listen():
            yield message

    manager._listen = listen_once_then_stop
    caplog.set_level(logging.ERROR, logger="realtime.manager")
    task = asyncio.get_running_loop().create_task(manager._thread())
    try:
        await wait_until(lambda: manager.listener_restarts == 1, "a listener restart")
        await wait_until(
            lambda: manager.channel_name is not None, "the second listener"
        )
        assert server.health()["listenerRestarts"] == 1
        assert server.health()["listener"] is True
        assert any("restarting" in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert task.done(), "a cancelled listener kept running"
    assert manager.listener_running is False


async def test_a_disconnect_leaves_the_manager_as_the_librarys_own_would():
    """Our quick ``basic_disconnect`` ends in the state python-socketio's
    (which scans every room) ends in, for sockets connecting and going."""
    from socketio.async_manager import AsyncManager

    ours, theirs = ChannelLayerManager(), AsyncManager()
    for manager in (ours, theirs):
        manager.set_server(BamSocketServer())
        manager.initialize()
        sids = [await manager.connect(f"eio{i}", "/") for i in range(50)]
        manager.pending_disconnect["/"] = [sids[3]]
        manager.callbacks[sids[4]] = {1: print}
        for sid in [*sids[::2], sids[3], "never-connected"]:
            manager.basic_disconnect(sid, "/")

    def state(manager):
        rooms = manager.rooms["/"]
        return (
            sorted(rooms[None].values()),  # the eio sids still connected
            sorted(rooms[None][sid] for sid in rooms if sid is not None),
            len(manager.callbacks),
            manager.pending_disconnect,
        )

    assert state(ours) == state(theirs)
    assert len(state(ours)[0]) == 24
