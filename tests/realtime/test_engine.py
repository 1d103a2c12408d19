"""The Engine.IO server's packet queue (realtime.engine), as python-engineio uses it."""

import asyncio

import pytest

from realtime.engine import PacketQueue
from realtime.server import sio


async def waiting(future: asyncio.Future) -> None:
    """Let the loop run until whoever awaits ``future`` has had its turn."""
    for _ in range(10):
        await asyncio.sleep(0)
    assert not future.done()


async def test_the_servers_sockets_wait_for_packets_without_a_task_per_wake():
    """The writer's ``wait_for(queue.get(), …)`` awaits a future as it is; with a
    coroutine, Python 3.11's wait_for made a task of it for every wake."""
    queue = sio.eio.create_queue()
    writer_waits = asyncio.get_running_loop().create_future()

    async def writer():
        get = queue.get()
        writer_waits.set_result(None)
        return await asyncio.wait_for(get, 45)

    task = asyncio.create_task(writer())
    await writer_waits
    await asyncio.sleep(0)  # the writer is now inside wait_for
    assert asyncio.all_tasks() == {task, asyncio.current_task()}, (
        "waiting for a packet started a task of its own"
    )
    await queue.put("packet")
    assert await task == "packet"


async def test_items_come_out_in_the_order_they_were_put():
    queue = PacketQueue()
    await queue.put(1)
    queue.put_nowait(2)
    assert (queue.qsize(), queue.empty()) == (2, False)
    assert await queue.get() == 1
    assert queue.get_nowait() == 2
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_waiting_gets_are_fed_in_the_order_they_asked():
    queue = PacketQueue()
    first, second = queue.get(), queue.get()
    queue.put_nowait("a")
    queue.put_nowait("b")
    queue.put_nowait("c")
    assert (await first, await second) == ("a", "b")
    assert await queue.get() == "c"


async def test_a_get_that_timed_out_loses_nothing_put_after_it():
    queue = PacketQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("late")
    assert queue.qsize() == 1, "the item went to the get() that had given up"
    assert await asyncio.wait_for(queue.get(), 1) == "late"


async def test_join_waits_until_every_item_is_done():
    queue = PacketQueue()
    await queue.join()  # nothing put: returns at once
    queue.put_nowait("x")
    queue.put_nowait("y")
    joined = asyncio.ensure_future(queue.join())
    await waiting(joined)
    queue.get_nowait()
    queue.task_done()
    await waiting(joined)
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()
