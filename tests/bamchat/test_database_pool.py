"""PostgreSQL connections of a live daphne: REST requests share a pool.

Under ASGI each request's synchronous code runs in a thread of its own. With
persistent per-thread connections every request opened a PostgreSQL session
that stayed open until the garbage collector found it: a session set-up per
request, and under load "sorry, too many clients already". PostgreSQL counts
the sessions it opened for each database (``pg_stat_database.sessions``), so
the test reads the server's own figure.
"""

import asyncio
import json
import os
import subprocess
import sys

import psycopg
import pytest

from tests.deploy import Deployment
from tests.live import ROOT, Api, ci
from tests.services import service_reachable

pytestmark = pytest.mark.services

PG_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REQUESTS = 300
POOL_MAX = 4


def sessions_opened(deployment: Deployment) -> tuple[int, int]:
    """Sessions PostgreSQL opened for the deployment's database so far, and those
    open now."""
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        opened = admin.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s",
            [deployment.pg.name],
        ).fetchone()[0]
        open_now = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
            [deployment.pg.name],
        ).fetchone()[0]
    return opened, open_now


@pytest.fixture
def pg_deployment():
    if not service_reachable("127.0.0.1", 5432):
        if ci():
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1; CI must run this")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1: pool test skipped")
    deployment = Deployment(database_url=PG_URL, DATABASE_POOL_MAX=str(POOL_MAX))
    try:
        yield deployment
    finally:
        deployment.close()


async def test_rest_requests_reuse_a_bounded_pool_of_connections(pg_deployment):
    server = pg_deployment.start_server("pool")
    api = Api(server.url)
    try:
        account = await api.account("pooled")
        opened_before, _ = sessions_opened(pg_deployment)

        async def some_requests(n: int) -> None:
            for _ in range(n):
                await api.request("GET", "/bams", token=account.access, expect=200)

        # Eight clients at once, so that requests overlap as in production.
        await asyncio.gather(*(some_requests(REQUESTS // 8) for _ in range(8)))
        opened_after, open_now = sessions_opened(pg_deployment)
    finally:
        await api.close()
    opened = opened_after - opened_before
    assert opened <= POOL_MAX, (
        f"{REQUESTS} requests opened {opened} PostgreSQL sessions "
        f"(a pool of {POOL_MAX} was configured)"
    )
    # The pool, the realtime thread, the task worker and this test's admin session.
    assert open_now <= POOL_MAX + 1, f"{open_now} sessions open"


# Runs a hot-path statement as the message writer does, through Django's
# connection; prints its text as PostgreSQL receives it ($n placeholders) and
# what this session has PostgreSQL keep prepared.
PREPARED_AFTER_USE = """
import django, json, re
django.setup()
from django.db import connection
from messaging import statements
for _ in range(10):
    statements.participant_ids(bam_id=1)
number = iter(range(1, 100))
text = re.sub("%s", lambda _: f"${next(number)}", statements.sql("participants"))
with connection.cursor() as cursor:
    cursor.execute("SELECT statement FROM pg_prepared_statements")
    print(json.dumps([text, [row[0] for row in cursor.fetchall()]]))
"""


def test_a_statement_run_again_and_again_is_prepared_once(pg_deployment):
    done = subprocess.run(
        [sys.executable, "-c", PREPARED_AFTER_USE],
        cwd=ROOT,
        env={**pg_deployment.env, "DJANGO_SETTINGS_MODULE": "bamchat.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    participants, prepared = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(participants in text for text in prepared), (
        f"not prepared after 10 runs: {participants!r}; prepared: {prepared}"
    )
