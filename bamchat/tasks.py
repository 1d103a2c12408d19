"""The one task queue of the project: django-tasks on its database backend.

Apps define tasks with ``bamchat.tasks.task`` (django-tasks' ``task`` plus retries
on transient database errors) and enqueue them as usual; workers (``manage.py
db_worker``) on any machine share the rows. Also here: ``InProcessWorker``, the
worker a server process runs in a thread so the embedded default needs no extra
process, and periodic jobs, which the realtime heartbeat enqueues when due (one
process per period, decided by the shared cache).
"""

import functools
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import django_tasks
from django.conf import settings
from django.core.cache import cache
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)
from django.db.models.signals import pre_save
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import Counter

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


# --- Retries on transient database errors ---------------------------------------
# django-tasks 0.12 / django-tasks-db 0.13 have no retries: a run that raises is
# FAILED for good. A run of one of our tasks that ends on a database error another
# attempt may not meet is recorded as READY again instead, due after a back-off,
# on the same row, so its result id and attempt count (the worker ids) carry on.

# Back-off doubles per attempt up to this: a database that has not come back after
# a minute needs an operator more than a faster retry.
TRANSIENT_RETRY_MAX_S = 60
# SQLite: another writer holds the lock (BUSY) or a table (LOCKED).
SQLITE_TRANSIENT_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED")
# PostgreSQL SQLSTATEs: connection exceptions (08…), serialization failures and
# deadlocks (40…), the server shutting down or starting (57P01 to 57P03).
POSTGRES_TRANSIENT_CLASSES = ("08", "40")
POSTGRES_TRANSIENT_STATES = ("57P01", "57P02", "57P03")

TASK_TRANSIENT_RETRIES = Counter(
    "bamchat_task_transient_retries",
    "Task runs that ended on a transient database error, by outcome: retried (due "
    "again after a back-off) or gave_up (TASKS_TRANSIENT_RETRIES used up: FAILED).",
    ["outcome"],
)


class TransientDatabaseError(Exception):
    """A task run ended on a database error that a later attempt may not meet."""


TRANSIENT_ERROR_PATH = (
    f"{TransientDatabaseError.__module__}.{TransientDatabaseError.__qualname__}"
)


def is_transient_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error worth another attempt of the same work."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    cause = exc.__cause__
    sqlite_error = getattr(cause, "sqlite_errorname", None)
    if sqlite_error is not None:
        return sqlite_error.startswith(SQLITE_TRANSIENT_ERRORS)
    if hasattr(cause, "sqlstate"):  # psycopg
        state = cause.sqlstate
        if state is None:  # no answer from the server: the connection is gone
            return True
        return (
            state[:2] in POSTGRES_TRANSIENT_CLASSES
            or state in POSTGRES_TRANSIENT_STATES
        )
    # Django's own "connection already closed".
    return isinstance(exc, InterfaceError)


def task(**options):
    """django-tasks' ``@task(...)``; a run ending on a transient database error
    (``is_transient_database_error``) runs again, ``TASKS_TRANSIENT_RETRIES`` times
    at most, so the task must be safe to run again after any failed statement."""

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                # Inside a caller's transaction only the caller can start over.
                in_transaction = any(
                    c.in_atomic_block for c in connections.all(initialized_only=True)
                )
                if in_transaction or not is_transient_database_error(exc):
                    raise
                close_old_connections()  # drops a connection that no longer works
                raise TransientDatabaseError(str(exc)) from exc

        return django_tasks.task(**options)(run)

    return decorate


def transient_retry_delay_s(attempt: int) -> float:
    """Wait before attempt ``attempt + 1``: the base, doubled per attempt, capped."""
    base = settings.TASKS_TRANSIENT_RETRY_BASE_S
    return min(base * 2 ** (attempt - 1), TRANSIENT_RETRY_MAX_S)


def reschedule_transient_failure(sender, instance, update_fields=None, **kwargs):
    """Turn the FAILED record of a run that ended on ``TransientDatabaseError`` into
    a READY one due after the back-off, while the worker writes it.

    The worker records a failure with ``DBTaskResult.set_failed`` (a ``save`` of
    the status); changing the instance here means the row never reads FAILED and
    the ``task_finished`` signal reports it READY.
    """
    if (
        instance.status != TaskResultStatus.FAILED
        or instance.exception_class_path != TRANSIENT_ERROR_PATH
        or (update_fields is not None and "status" not in update_fields)
    ):
        return
    attempt = len(instance.worker_ids)
    retries = settings.TASKS_TRANSIENT_RETRIES
    last_line = instance.traceback.strip().rsplit("\n", 1)[-1]
    error = last_line.removeprefix(f"{TRANSIENT_ERROR_PATH}: ")
    if attempt > retries:
        TASK_TRANSIENT_RETRIES.labels("gave_up").inc()
        logger.warning(
            "Task %s %s gave up after %d attempts: %s",
            instance.task_path,
            instance.pk,
            attempt,
            error,
        )
        return
    delay = transient_retry_delay_s(attempt)
    run_after = timezone.now() + timedelta(seconds=delay)
    # Not among the fields the worker saves; the row is RUNNING until that save.
    DBTaskResult.objects.filter(pk=instance.pk).update(run_after=run_after)
    instance.run_after = run_after
    instance.status = TaskResultStatus.READY
    instance.finished_at = None
    TASK_TRANSIENT_RETRIES.labels("retried").inc()
    logger.warning(
        "Task %s %s attempt %d of %d: %s; again in %.1fs",
        instance.task_path,
        instance.pk,
        attempt,
        retries + 1,
        error,
        delay,
    )


pre_save.connect(
    reschedule_transient_failure,
    sender=DBTaskResult,
    dispatch_uid="bamchat.tasks.reschedule_transient_failure",
)


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
