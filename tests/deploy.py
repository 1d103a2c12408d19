"""Live daphne processes on loopback and the deployment (database, Redis,
environment) they share.

``LiveServer`` runs ``daphne bamchat.asgi:application`` in a subprocess on a
loopback port chosen by the OS and waits for it to say it is listening.
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.live import PASSWORD, ROOT
from tests.services import ThrowawayPostgres

LISTENING = re.compile(r"Listening on TCP address [\d.]+:(\d+)")


class LiveServer:
    """One daphne process serving the project on 127.0.0.1."""

    def __init__(
        self, env: dict[str, str], name: str = "server", daphne_args: tuple = ()
    ) -> None:
        self.env = env
        self.name = name
        self.daphne_args = tuple(daphne_args)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0, timeout: float = 30) -> LiveServer:
        return self.launch(port).wait_listening(timeout)

    def launch(self, port: int = 0) -> LiveServer:
        """Start the process without waiting for it to listen."""
        daphne = Path(sys.executable).with_name("daphne")
        self._lines = queue.Queue()  # a restart reads only the new process
        self.process = subprocess.Popen(
            [
                str(daphne),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                *self.daphne_args,
                "bamchat.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def wait_listening(self, timeout: float = 30) -> LiveServer:
        """Block until the launched process says it is listening."""
        try:
            while True:
                line = self._lines.get(timeout=timeout)
                if line is None:
                    raise RuntimeError(
                        f"{self.name} exited before listening:\n{self.log()}"
                    )
                match = LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                    return self
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not listen within {timeout}s:\n{self.log()}"
            ) from None

    def _pump(self) -> None:
        assert self.process and self.process.stderr
        lines = self._lines
        for line in self.process.stderr:
            self.log_lines.append(line)
            if len(self.log_lines) > 5000:
                del self.log_lines[:1000]
            lines.put(line)
        lines.put(None)

    def log(self) -> str:
        return "".join(self.log_lines[-80:])

    def wait_for_line(self, needle: str, timeout: float = 10) -> str:
        """Block until the server writes a stderr line containing ``needle``."""
        try:
            while True:
                line = self._lines.get(timeout=timeout)
                if line is None:
                    raise AssertionError(f"{self.name} exited:\n{self.log()}")
                if needle in line:
                    return line
        except queue.Empty:
            raise AssertionError(
                f"{self.name} wrote no line with {needle!r} in {timeout}s:\n"
                f"{self.log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the process dies without any cleanup."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a live server: this run's key, no debug, loopback hosts."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="INFO",
        REGISTER_RATE="100000/min",  # every test account comes from 127.0.0.1
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    """Create the schema in the database the environment points at."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


class MigratedTemplates:
    """One migrated database per set of settings, copied for each deployment.

    Migrating takes seconds per deployment; copying a database migrated once in
    this test run (SQLite's backup, PostgreSQL's ``CREATE DATABASE … TEMPLATE``)
    takes a fraction of that and gives the same schema and rows.
    """

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="bamchat-templates-")
        self.sqlite: dict[tuple, str] = {}
        self.postgres: dict[tuple, ThrowawayPostgres] = {}
        atexit.register(self.close)

    @staticmethod
    def _key(env: dict[str, str]) -> tuple:
        # pytest names the running test in the environment: not a setting.
        return tuple(sorted(i for i in env.items() if i[0] != "PYTEST_CURRENT_TEST"))

    def sqlite_copy(self, env: dict[str, str], path: str) -> None:
        """Create the SQLite file ``path`` as ``migrate`` would with ``env``."""
        key = self._key(env)
        template = self.sqlite.get(key)
        if template is None:
            template = os.path.join(self.folder, f"t{len(self.sqlite)}.sqlite3")
            migrate({**env, "SQLITE_PATH": template})
            self.sqlite[key] = template
        source, target = sqlite3.connect(template), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

    def postgres_copy(self, env: dict[str, str], base_url: str) -> ThrowawayPostgres:
        """A new database on ``base_url``'s server as ``migrate`` would make it."""
        key = (base_url, *self._key(env))
        template = self.postgres.get(key)
        if template is None:
            template = ThrowawayPostgres(base_url)
            migrate({**env, "DATABASE_URL": template.create()})
            self.postgres[key] = template
        copy = ThrowawayPostgres(base_url)
        copy.create(template=template.name)
        return copy

    def close(self) -> None:
        for template in self.postgres.values():
            try:
                template.drop()
            except Exception:  # the server may be gone at exit; nothing to keep
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


_templates: MigratedTemplates | None = None


def templates() -> MigratedTemplates:
    global _templates
    if _templates is None:
        _templates = MigratedTemplates()
    return _templates


class Deployment:
    """One database (and optionally Redis) shared by one or more live servers."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        **extra_env: str,
    ) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bamchat-live-")
        self.pg: ThrowawayPostgres | None = None
        base_db = database_url or os.environ.get("DATABASE_URL")
        extra = {"REDIS_URL": redis_url} if redis_url else {}
        settings_env = server_env(**extra, **extra_env)
        if base_db and not base_db.startswith("sqlite:"):  # a run's own SQLite file
            self.pg = templates().postgres_copy(settings_env, base_db)
            self.env = {**settings_env, "DATABASE_URL": self.pg.url}
        else:
            path = os.path.join(self.tmp, "live.sqlite3")
            templates().sqlite_copy(settings_env, path)
            self.env = {**settings_env, "SQLITE_PATH": path}
        self.servers: list[LiveServer] = []

    def shell(self, code: str) -> None:
        """Run Python against this deployment's database (``User`` is in scope)."""
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from accounts.models import User\n" + code,
            ],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def create_staff(self, username: str, password: str = PASSWORD) -> None:
        """Create a staff superuser in this deployment's database."""
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "createsuperuser",
                "--noinput",
                "--username",
                username,
                "--email",
                f"{username}@example.com",
            ],
            cwd=ROOT,
            env={**self.env, "DJANGO_SUPERUSER_PASSWORD": password},
            check=True,
            capture_output=True,
        )

    def start_server(
        self, name: str = "server", daphne_args: tuple = (), **extra_env: str
    ) -> LiveServer:
        return self.start_servers(name, daphne_args=daphne_args, **extra_env)[0]

    def start_servers(
        self, *names: str, daphne_args: tuple = (), **extra_env: str
    ) -> list[LiveServer]:
        """Start one server per name, all at once, and wait until each listens."""
        launched = [
            LiveServer(
                {**self.env, **extra_env}, name=name, daphne_args=daphne_args
            ).launch()
            for name in names
        ]
        self.servers.extend(launched)
        return [server.wait_listening() for server in launched]

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.pg:
            self.pg.drop()
        shutil.rmtree(self.tmp, ignore_errors=True)
