"""This server process's identity, heartbeat and the reaping of dead peers."""

import asyncio
import logging
import os
import socket
import uuid

from channels.db import database_sync_to_async
from django.conf import settings

from realtime import events, services

logger = logging.getLogger(__name__)


class ProcessLife:
    """Registers the process once, then beats and reaps in the background."""

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:8]}"
        self._started = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.beats = 0
        self.last_error: str | None = None

    async def ensure_started(self) -> None:
        """Register this process and start its heartbeat, once."""
        if self._started:
            return
        async with self._lock:
            if self._started:
                return
            events.publisher_start()
            await database_sync_to_async(services.process_register)(
                process_id=self.id, host=self.host, pid=self.pid
            )
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="realtime-heartbeat"
            )
            self._started = True
            logger.info("Realtime process %s registered", self.id)

    async def _run(self) -> None:
        interval = settings.REALTIME["HEARTBEAT_INTERVAL_S"]
        dead_after = settings.REALTIME["PROCESS_DEAD_AFTER_S"]
        while True:
            await asyncio.sleep(interval)
            try:
                await database_sync_to_async(services.process_heartbeat)(
                    process_id=self.id, host=self.host, pid=self.pid
                )
                await database_sync_to_async(services.processes_reap)(
                    dead_after_s=dead_after, exclude_id=self.id
                )
                self.beats += 1
                self.last_error = None
                await self.on_beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.last_error is None:
                    logger.exception("Heartbeat failed; will retry")
                self.last_error = str(exc)

    async def on_beat(self) -> None:
        """Hook run after each heartbeat (the server refreshes its groups here)."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
