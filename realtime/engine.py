"""python-engineio's server with a packet queue that wakes its writer cheaply.

Every Engine.IO socket has a queue of packets to send and a writer that waits
on it with ``asyncio.wait_for(queue.get(), ping_interval + ping_timeout)``. On
Python 3.11, ``wait_for`` wraps a coroutine in a task of its own, so with
``asyncio.Queue`` (whose ``get`` is a coroutine) every wake of a writer made a
task and ran one more loop step; a writer wakes once per packet on a socket
that is not busy, so nearly once per delivered message. ``PacketQueue.get``
returns a future instead, which ``wait_for`` awaits as it is: 22 → 15 µs per
wake in a microbenchmark (README, "Thousands of sockets at once").

The queue does what python-engineio asks of the ``asyncio.Queue`` it replaces
(``get``, ``get_nowait``, ``put``, ``put_nowait``, ``task_done``, ``join``,
``qsize``, ``empty``), without a size limit, as the library creates it.
``EngineServer.create_queue`` is python-engineio's public method for making a
socket's queue; python-socketio builds its engine from the class its
``_engineio_server_class`` returns, and has no public way to choose it, so
``BamSocketServer`` overrides that one method (``realtime.server``).
"""

import asyncio
from collections import deque

import engineio


class PacketQueue:
    """A FIFO queue whose ``get()`` is a future: the next item, when there is one."""

    def __init__(self) -> None:
        self._items: deque = deque()
        self._getters: deque[asyncio.Future] = deque()
        self._unfinished = 0
        self._all_done: asyncio.Future | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item) -> None:
        """Queue ``item``, or hand it to the oldest ``get()`` still waiting.

        An item is handed to a waiting future only; a ``get()`` that was
        cancelled (``wait_for``'s timeout: the engine then closes the socket)
        is skipped."""
        self._unfinished += 1
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(item)
                return
        self._items.append(item)

    async def put(self, item) -> None:
        self.put_nowait(item)

    def get(self) -> asyncio.Future:
        """A future of the next item, in the order items were put."""
        future = asyncio.get_running_loop().create_future()
        if self._items:  # then no get() is waiting: put_nowait would have fed it
            future.set_result(self._items.popleft())
            return future
        while self._getters and self._getters[0].done():  # given up on
            self._getters.popleft()
        self._getters.append(future)
        return future

    def get_nowait(self):
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._all_done is not None:
            if not self._all_done.done():
                self._all_done.set_result(None)
            self._all_done = None

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        if self._unfinished == 0:
            return
        if self._all_done is None:
            self._all_done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._all_done)


class EngineServer(engineio.AsyncServer):
    """python-engineio's asyncio server whose sockets queue in ``PacketQueue``."""

    def create_queue(self, *args, **kwargs) -> PacketQueue:
        return PacketQueue()
