"""The shared task queue: periodic jobs are enqueued once per period; a run that
meets a transient database error runs again, a bounded number of times."""

import importlib
import json
import queue
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import IntegrityError, InterfaceError, OperationalError
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

from bamchat.tasks import enqueue_due_periodic, is_transient_database_error
from push.tasks import push_fanout, push_prune
from tests.deploy import LiveServer, migrate, server_env
from tests.live import ROOT, Api
from tests.push.service import Browser, PushService
from tests.push.test_delivery import subscribe


@pytest.mark.django_db
def test_a_periodic_job_is_enqueued_once_per_period():
    cache.clear()
    assert push_prune.module_path in enqueue_due_periodic()
    assert push_prune.module_path not in enqueue_due_periodic()
    queued = DBTaskResult.objects.filter(task_path=push_prune.module_path)
    assert queued.count() == 1
    cache.clear()  # the period is over
    assert push_prune.module_path in enqueue_due_periodic()


def django_error(kind, cause: BaseException) -> Exception:
    """The Django error a database driver's ``cause`` arrives as."""
    try:
        raise kind(str(cause)) from cause
    except kind as exc:
        return exc


def sqlite_error(sql: str, path: str) -> sqlite3.Error:
    """What SQLite raises for ``sql`` while another connection holds the write lock."""
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            try:
                other.execute(sql)
            except sqlite3.Error as exc:
                return exc
    raise AssertionError(f"{sql!r} raised nothing")


@pytest.mark.parametrize(
    "error, transient",
    [
        (
            lambda p: django_error(
                OperationalError, sqlite_error("BEGIN IMMEDIATE", p)
            ),
            True,
        ),
        (
            lambda p: django_error(
                OperationalError, sqlite_error("SELECT * FROM no", p)
            ),
            False,
        ),
        (
            lambda p: django_error(
                OperationalError, psycopg.errors.SerializationFailure()
            ),
            True,
        ),
        (
            lambda p: django_error(OperationalError, psycopg.errors.DeadlockDetected()),
            True,
        ),
        (
            lambda p: django_error(OperationalError, psycopg.errors.AdminShutdown()),
            True,
        ),
        (
            lambda p: django_error(
                OperationalError, psycopg.OperationalError("closed")
            ),
            True,
        ),
        (
            lambda p: django_error(OperationalError, psycopg.errors.QueryCanceled()),
            False,
        ),
        (
            lambda p: django_error(IntegrityError, psycopg.errors.UniqueViolation()),
            False,
        ),
        (lambda p: InterfaceError("connection already closed"), True),
        (lambda p: ValueError("database is locked"), False),
    ],
)
def test_transient_database_errors_are_told_from_the_rest(tmp_path, error, transient):
    exc = error(str(tmp_path / "lock.sqlite3"))
    assert is_transient_database_error(exc) is transient, repr(exc.__cause__ or exc)


def test_every_task_of_the_project_retries_transient_errors():
    made_here = []
    for app in apps.get_app_configs():
        if not Path(app.path).is_relative_to(ROOT) or app.name == "bamchat":
            continue
        try:
            module = importlib.import_module(f"{app.name}.tasks")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, Task):
                made_here.append((value.module_path, value.func))
    assert {path for path, _ in made_here} >= {
        push_fanout.module_path,
        "messaging.tasks.attachments_cleanup_task",
    }
    plain = [path for path, func in made_here if not hasattr(func, "__wrapped__")]
    assert not plain, f"made with django_tasks.task, not bamchat.tasks.task: {plain}"


class LockingWorker:
    """``tests.bamchat.locking_worker`` in a subprocess, its log lines readable."""

    def __init__(self, env: dict[str, str], task_path: str, runs: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bamchat.locking_worker",
                task_path,
                str(runs),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, needle: str, timeout: float = 20) -> str:
        """Block until the worker logs a line containing ``needle``."""
        try:
            while (line := self._queue.get(timeout=timeout)) is not None:
                if needle in line:
                    return line
        except queue.Empty:
            pass
        raise AssertionError(
            f"the worker logged no line with {needle!r}:\n{''.join(self.lines[-40:])}"
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def task_rows(sqlite_path: str, task_path: str) -> list[tuple[str, int]]:
    """(status, attempts) of each queued run of a task, read from the database file."""
    with closing(sqlite3.connect(sqlite_path)) as db:
        rows = db.execute(
            f"SELECT status, worker_ids FROM {DBTaskResult._meta.db_table} "
            "WHERE task_path = ? ORDER BY enqueued_at",
            [task_path],
        ).fetchall()
    return [(status, len(json.loads(workers))) for status, workers in rows]


@pytest.fixture
def locked_fanout_stack(tmp_path):
    """A server (no task worker), a local push service, and a SQLite file named by a
    ``sqlite://`` DATABASE_URL; the test starts the locking worker."""
    service = PushService().start()
    sqlite_path = str(tmp_path / "live.sqlite3")
    env = server_env(
        DATABASE_URL=f"sqlite:///{sqlite_path}",
        PUSH_ALLOWED_HOSTS=service.origin,
        TASKS_IN_PROCESS_WORKER="0",
        TASKS_TRANSIENT_RETRY_BASE_S="0.1",
    )
    migrate(env)
    server = LiveServer(env, name="no-worker").start()
    workers: list[LockingWorker] = []

    def start_worker(runs: int, **extra: str) -> LockingWorker:
        worker_env = {**env, "SQLITE_BUSY_TIMEOUT_S": "0.5", **extra}
        workers.append(LockingWorker(worker_env, push_fanout.module_path, runs))
        return workers[-1]

    yield server, service, sqlite_path, start_worker
    for worker in workers:
        worker.stop()
    server.stop()
    service.stop()


async def message_to_an_offline_subscriber(server, service) -> tuple[dict, Browser]:
    """Post a message whose fan-out has one device to push to."""
    api = Api(server.url)
    try:
        alice, bob = await api.account("alice"), await api.account("bob")
        bam = await api.bam(alice, bob)
        browser = Browser(service)
        await subscribe(api, bob, browser)
        return await api.post_message(alice, bam["id"], "through the lock"), browser
    finally:
        await api.close()


@pytest.mark.live
async def test_a_fanout_that_meets_a_locked_database_runs_again_and_pushes(
    locked_fanout_stack,
):
    server, service, sqlite_path, start_worker = locked_fanout_stack
    message, browser = await message_to_an_offline_subscriber(server, service)
    worker = start_worker(runs=1)
    worker.wait_for_line("Lock released")
    retried = worker.wait_for_line("again in")
    assert "attempt 1 of 6: database is locked" in retried
    payload = await browser.wait_push(message["id"])
    assert payload["body"] == "through the lock"
    assert len(browser.delivered_for(message["id"])) == 1
    assert task_rows(sqlite_path, push_fanout.module_path) == [("SUCCESSFUL", 2)]
    assert not [line for line in worker.lines if "FAILED" in line]


@pytest.mark.live
async def test_a_fanout_that_keeps_meeting_locks_gives_up_after_the_retries(
    locked_fanout_stack,
):
    server, service, sqlite_path, start_worker = locked_fanout_stack
    message, browser = await message_to_an_offline_subscriber(server, service)
    worker = start_worker(runs=3, TASKS_TRANSIENT_RETRIES="2")
    worker.wait_for_line("gave up after 3 attempts")
    worker.wait_for_line("state=FAILED")  # django-tasks logs it once it is written
    assert task_rows(sqlite_path, push_fanout.module_path) == [("FAILED", 3)]
    assert browser.delivered_for(message["id"]) == []
