"""The db_worker's own Worker, with another connection holding the SQLite write lock
while chosen runs of one task start.

``python -m tests.bamchat.locking_worker <task path> <runs>``, with a deployment's
environment (a SQLite file): the first ``runs`` runs of that task meet a write lock
taken, from a second connection, once the worker has claimed the task; the lock is
let go as soon as one of the task's statements has failed on it, so the worker can
record the outcome. It works until terminated.
"""

import logging
import os
import sqlite3
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bamchat.settings")
django.setup()

from django.db import connection  # noqa: E402
from django_tasks.signals import task_started  # noqa: E402
from django_tasks_db.management.commands.db_worker import Worker  # noqa: E402

logger = logging.getLogger("tests.locking_worker")


def main() -> None:
    """Serve the queue, locking the database under the first runs of one task."""
    task_path, runs = sys.argv[1], int(sys.argv[2])
    holder = sqlite3.connect(
        connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
    )
    left = {"runs": runs}

    def release_once_failed(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
                connection.execute_wrappers.remove(release_once_failed)
                logger.warning("Lock released after %r failed", sql)
            raise

    def lock_before_the_task(sender, task_result, **kwargs) -> None:
        if task_result.task.module_path != task_path or left["runs"] <= 0:
            return
        left["runs"] -= 1
        holder.execute("BEGIN IMMEDIATE")
        connection.execute_wrappers.append(release_once_failed)
        logger.warning("Lock held for %s", task_path)

    task_started.connect(lock_before_the_task)
    Worker(
        queue_names=["*"],
        excluded_queue_names=[],
        interval=0.05,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="locking-worker",
    ).run()


if __name__ == "__main__":
    main()
