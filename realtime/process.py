"""This server process's life: start, heartbeat, reaping dead peers, clean stop.

The process starts with its first ASGI call (or ASGI lifespan startup). Under
daphne, a SIGTERM stops the Twisted reactor; its "before shutdown" trigger
waits for ``drain``: new connections are refused, the process's sockets leave
the cluster view in one step (and are never written back), the process record
goes, local sockets lose their transport (so clients reconnect to another
process), and after the presence grace the users who did not come back are
announced offline, all of them with one cluster-view round trip and one
audience query. Then the process exits. Nothing in a stop is done once per
socket against Redis or the database.
"""

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid

from channels.db import database_sync_to_async
from django.conf import settings

from bamchat.tasks import enqueue_due_periodic, in_process_worker
from realtime import bus, services

logger = logging.getLogger(__name__)

# A drain never takes longer than this (seconds) beyond the presence grace; an
# orchestrator's stop timeout (Kubernetes: 30 s) leaves room for it.
DRAIN_LIMIT_S = 5
# The loop's lateness is measured this often (seconds).
LAG_PROBE_S = 0.1


class ProcessLife:
    """Registers the process once, then beats, reaps and records in the background."""

    def __init__(self, server) -> None:
        self.server = server
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:8]}"
        self.draining = False
        self.lag = 0.0  # how late the event loop runs its callbacks (seconds)
        self.errors: dict[str, str] = {}  # "Heartbeat"/"Heartbeat upkeep": failing now
        self._started = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._upkeep: asyncio.Task | None = None
        self._last_beat: float | None = None  # monotonic time of the last heartbeat
        self._beating_since: float | None = None  # heartbeats without a gap since

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def ensure_started(self) -> None:
        """Register this process and start its background work, once."""
        if self._started:
            return
        async with self._lock:
            if self._started:
                return
            server = self.server
            bus.bus.start(server.relay.dispatch)
            await server.manager.ensure_channel()
            await database_sync_to_async(services.process_register)(
                process_id=self.id, host=self.host, pid=self.pid
            )
            self._last_beat = self._beating_since = time.monotonic()
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._beat(), name="realtime-heartbeat"),
                loop.create_task(
                    server.presence.run_recorder(), name="realtime-presence-recorder"
                ),
                loop.create_task(self._watch_lag(), name="realtime-loop-lag"),
            ]
            self._hook_daphne_shutdown()
            in_process_worker.start(worker_id=self.id)
            self._started = True
            logger.info("Realtime process %s started", self.id)

    def _hook_daphne_shutdown(self) -> None:
        """Under daphne (Twisted), drain before the reactor stops.

        daphne's own "before shutdown" trigger cancels every connection's
        application at once, so each socket would be torn down alone, in a
        process that does not know it is stopping. SIGTERM (the signal of a
        deploy) therefore drains first and only then stops the reactor; any
        other stop (Ctrl-C) still waits for the drain in a trigger.
        """
        if "twisted.internet.reactor" not in sys.modules:
            return
        from twisted.internet import defer, reactor

        def before_shutdown():
            return defer.Deferred.fromFuture(asyncio.ensure_future(self.drain()))

        async def drain_then_stop():
            await self.drain()
            if reactor.running:
                reactor.stop()

        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
        if threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGTERM, lambda: self.server.background(drain_then_stop())
            )

    @property
    def overloaded(self) -> bool:
        """Whether the loop is too late to take on new connections now."""
        return self.lag > settings.REALTIME["SHED_LAG_S"]

    async def _watch_lag(self) -> None:
        """Measure how late the loop wakes a sleeper, ten times a second."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self.lag = max(0.0, loop.time() - started - LAG_PROBE_S)

    async def _beat(self) -> None:
        """Say this process lives every interval, whatever else is slow.

        Liveness is this one database write. The upkeep after it (reaping,
        the cluster view, presence, subscriptions, periodic tasks) talks to
        Redis too, so it runs beside the heartbeats, one upkeep at a time: a
        Redis stall delays the upkeep, never the heartbeat that keeps the other
        processes from reaping this one.
        """
        while True:
            await asyncio.sleep(settings.REALTIME["HEARTBEAT_INTERVAL_S"])
            if not await self._attempt("Heartbeat", self.heartbeat):
                continue
            if self._upkeep is None or self._upkeep.done():
                self._upkeep = asyncio.get_running_loop().create_task(
                    self._attempt("Heartbeat upkeep", self.upkeep),
                    name="realtime-upkeep",
                )

    @property
    def last_error(self) -> str | None:
        """An error of the beat (heartbeat or upkeep) while it keeps failing."""
        return next(iter(self.errors.values()), None)

    async def _attempt(self, what: str, step) -> bool:
        """Run a step of the beat; log its failure once per streak of failures."""
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if what not in self.errors:
                logger.exception("%s failed; will retry", what)
            self.errors[what] = str(exc)
            return False
        self.errors.pop(what, None)
        return True

    async def heartbeat(self) -> None:
        """Say this process lives, and note since when it has without a gap."""
        await database_sync_to_async(services.process_heartbeat)(
            process_id=self.id, host=self.host, pid=self.pid
        )
        now = time.monotonic()
        gap_limit = settings.REALTIME["PROCESS_DEAD_AFTER_S"] / 2
        if self._last_beat is None or now - self._last_beat > gap_limit:
            self._beating_since = now
        self._last_beat = now

    @property
    def may_reap(self) -> bool:
        """Whether this process may judge others dead: only once it has itself
        said it lives, without a gap, for as long as a silence must last. After
        its own heartbeats stopped (the database away, this process frozen or
        its loop stalled), the others' may have stopped for the same reason."""
        if self._beating_since is None:
            return False
        lived = time.monotonic() - self._beating_since
        return lived >= settings.REALTIME["PROCESS_DEAD_AFTER_S"]

    async def upkeep(self) -> None:
        """Reap the dead, make due offline checks, mend the view, and enqueue
        due periodic tasks."""
        server = self.server
        if self.may_reap:
            dead = await database_sync_to_async(services.processes_reap)(
                dead_after_s=settings.REALTIME["PROCESS_DEAD_AFTER_S"],
                exclude_id=self.id,
            )
            for process_id in dead:
                users = await server.roster.view.forget_process(process_id)
                await server.presence.check_many(users)
        await server.roster.view.resync_if_lost()
        await server.presence.sweep()
        manager = server.manager
        if manager.channel_name is not None:
            try:
                # Group memberships vanish with a Redis restart: assert them again.
                await manager.resubscribe()
            except Exception as exc:
                manager._mark_down(exc)
        await database_sync_to_async(enqueue_due_periodic)()

    async def drain(self) -> None:
        """Stop cleanly: see the module's docstring."""
        if self.draining or not self._started:
            return
        self.draining = True
        # The task worker finishes its current task meanwhile (it takes no new one).
        worker_stopped = asyncio.ensure_future(
            asyncio.to_thread(in_process_worker.stop)
        )
        try:
            await asyncio.wait_for(
                self._drain(), self.server.presence.grace_s + DRAIN_LIMIT_S
            )
        except Exception:
            logger.exception("Clean stop did not finish; stopping anyway")
        for task in [*self._tasks, self._upkeep]:
            if task is not None:
                task.cancel()
        await worker_stopped
        await bus.bus.stop()

    async def _drain(self) -> None:
        server = self.server
        await server.roster.view.detach()
        await database_sync_to_async(services.process_forget)(process_id=self.id)
        released = await server.release_all()
        users = {info.user_id for info in released}
        # Closing each transport is the library's work, once per socket: it
        # runs during the grace, which the users' clients spend reconnecting.
        closing = server.background(
            server.drop_transports([info.eio_sid for info in released])
        )
        if users:
            await asyncio.sleep(server.presence.grace_s)
            await server.presence.check_many(users)
        await closing
        logger.info(
            "Stopping: dropped %d sockets of %d users", len(released), len(users)
        )
        await server.presence.record()
