"""The one task queue of the project: django-tasks on its database backend.

Apps define tasks with ``django_tasks.task`` and enqueue them as usual; workers
(``manage.py db_worker``) on any machine share the rows. Two additions live here:
``InProcessWorker``, the worker a server process runs in a thread so the embedded
default needs no extra process, and periodic jobs, which the realtime heartbeat
enqueues when due (one process per period, decided by the shared cache).
"""

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connections

logger = logging.getLogger(__name__)

PERIODIC_KEY_PREFIX = "tasks:periodic:"


@dataclass(frozen=True)
class PeriodicJob:
    """A task enqueued about once every ``every_s`` seconds across the cluster."""

    task: object  # a django_tasks.Task taking no arguments
    every_s: int


_periodic: dict[str, PeriodicJob] = {}


def periodic(*, every_s: int):
    """Decorator for a task: enqueue it about once every ``every_s`` seconds."""

    def register(task):
        _periodic[task.module_path] = PeriodicJob(task=task, every_s=int(every_s))
        return task

    return register


def enqueue_due_periodic() -> list[str]:
    """Enqueue each periodic task whose period has no enqueue yet; their paths."""
    enqueued = []
    for path, job in _periodic.items():
        # cache.add is atomic: of the processes beating in this period, one wins.
        if cache.add(PERIODIC_KEY_PREFIX + path, 1, timeout=job.every_s):
            job.task.enqueue()
            enqueued.append(path)
    return enqueued


class InProcessWorker:
    """The database backend's worker loop, run in a daemon thread of this process."""

    def __init__(self) -> None:
        self._worker = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, worker_id: str) -> None:
        """Start the worker thread, once, unless settings turn it off."""
        if self._thread is not None or not settings.TASKS_IN_PROCESS_WORKER:
            return
        # `call_command("db_worker")` installs signal handlers, which only the main
        # thread may do (and the main thread serves requests). The command's own
        # Worker class runs the same claim-and-run loop without them.
        from django_tasks_db.management.commands.db_worker import Worker

        self._worker = Worker(
            queue_names=["*"],
            excluded_queue_names=[],
            interval=settings.TASKS_WORKER_INTERVAL_S,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id[:64],
        )
        self._thread = threading.Thread(
            target=self._run, name="tasks-worker", daemon=True
        )
        self._thread.start()
        logger.info("Task worker %s runs in this process", worker_id[:64])

    def _run(self) -> None:
        try:
            while True:
                try:
                    self._worker.run()
                    return  # it returns only once stop() asked it to
                except Exception:
                    logger.exception("Task worker failed; starting it again")
                if self._stopped.wait(settings.TASKS_WORKER_INTERVAL_S * 4):
                    return
        finally:
            connections.close_all()

    def stop(self, timeout: float = 5) -> None:
        """Let the running task finish, then end the thread (wait up to ``timeout``)."""
        self._stopped.set()
        if self._worker is not None:
            self._worker.running = False
        if self._thread is not None:
            self._thread.join(timeout)


in_process_worker = InProcessWorker()
