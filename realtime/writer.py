"""Group commit of the messages sockets send.

Every socket's ``send-message`` waits for its message to be stored. Instead of
one transaction each, the writer stores every message that is waiting when the
database thread becomes free in one transaction (``messages_create``), so a
busy process commits once per batch rather than once per message: the fsync of
PostgreSQL, the lock of SQLite and the thread hop are shared. An idle process
stores a lone message at once, so nothing waits for a batch to fill.
"""

import asyncio
from collections import deque

from channels.db import database_sync_to_async

from messaging import services as messaging_services
from messaging.serializers import message_payload

# Messages stored in one transaction at most; more wait for the next one.
MAX_BATCH = 200


def _store(drafts: list) -> list:
    """In the database thread: store the drafts, build each ack's payload."""
    results = messaging_services.messages_create(drafts)
    return [r if isinstance(r, Exception) else message_payload(r) for r in results]


class MessageWriter:
    """Stores drafts in batches, one batch at a time, in the order they came."""

    def __init__(self) -> None:
        self._waiting: deque[tuple[object, asyncio.Future]] = deque()
        self._task: asyncio.Task | None = None

    async def store(self, draft) -> dict:
        """Store one message draft; its payload, or the error that refused it."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((draft, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._waiting:
            batch = [
                self._waiting.popleft()
                for _ in range(min(MAX_BATCH, len(self._waiting)))
            ]
            try:
                results = await database_sync_to_async(_store)([d for d, _ in batch])
            except Exception as exc:  # each waiting handler reports it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
