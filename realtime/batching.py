"""Group commit: what arrives while a batch runs is run together, next.

A connect storm or a busy chat brings many small round trips at once (a
message to store, a handshake's token to check, a join's membership to read, a
cluster-view write). A ``Batcher`` runs the first at once and everything that
arrived meanwhile as one batch after it: one transaction, one query, one
pipeline. An idle process runs a lone call at once, so nothing waits for a
batch to fill, and every caller gets its own result or its own error.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class Batcher:
    """Runs ``run_batch(items)`` on what waits, one batch at a time, in order.

    ``run_batch`` returns one result per item; an ``Exception`` among them is
    raised to that item's caller alone, and one raised by ``run_batch`` itself
    to every caller of the batch.
    """

    def __init__(
        self, run_batch: Callable[[list], Awaitable[list]], *, max_batch: int
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._waiting: deque[tuple[object, asyncio.Future]] = deque()
        self._task: asyncio.Task | None = None

    async def submit(self, item):
        """Run ``item`` in the next batch; its result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._waiting:
            size = min(self.max_batch, len(self._waiting))
            batch = [self._waiting.popleft() for _ in range(size)]
            try:
                results = await self.run_batch([item for item, _ in batch])
            except Exception as exc:  # each waiting caller reports it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
