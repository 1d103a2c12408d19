"""Group commit of the messages sockets send.

Every socket's ``send-message`` waits for its message to be stored. Instead of
one transaction each, the writer stores every message that is waiting when the
database thread becomes free in one transaction (``messages_create``), so a
busy process commits once per batch rather than once per message: the fsync of
PostgreSQL, the lock of SQLite and the thread hop are shared. An idle process
stores a lone message at once, so nothing waits for a batch to fill.
"""

from channels.db import database_sync_to_async

from messaging import services as messaging_services
from messaging.serializers import stored_message_payload
from realtime.batching import Batcher

# Messages stored in one transaction at most; more wait for the next one.
MAX_BATCH = 200


def _store(drafts: list) -> list:
    """In the database thread: store the drafts; each ack's payload is the one
    its announcement carries."""
    results = messaging_services.messages_create(drafts)
    return [
        r if isinstance(r, Exception) else stored_message_payload(r) for r in results
    ]


class MessageWriter:
    """Stores drafts in batches, one batch at a time, in the order they came."""

    def __init__(self) -> None:
        self._batcher = Batcher(database_sync_to_async(_store), max_batch=MAX_BATCH)

    async def store(self, draft) -> dict:
        """Store one message draft; its payload, or the error that refused it."""
        return await self._batcher.submit(draft)
