"""Reading settings from the environment: malformed values fail loudly, at start."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable as a list of non-empty items."""
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable, failing loudly on a malformed value."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be a whole number, got {raw!r}."
        ) from exc


def env_ints(name: str, default: str, *, count: int) -> tuple[int, ...]:
    """Read ``count`` comma-separated positive whole numbers, failing loudly."""
    raw = os.environ.get(name) or default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be {count} whole numbers separated by commas, got {raw!r}."
        ) from exc
    if len(values) != count or min(values) < 1:
        raise ImproperlyConfigured(
            f"{name} must be {count} whole numbers above 0, got {raw!r}."
        )
    return values


def env_float(name: str, default: float) -> float:
    """Read a number (fractions allowed) from the environment, failing loudly."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from exc
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be above 0, got {raw!r}.")
    return value


def sqlite_database(name: str, options: dict | None = None) -> dict:
    """The one SQLite configuration, whether the file comes from ``SQLITE_PATH`` or a
    ``sqlite://`` ``DATABASE_URL`` (whose query options override single defaults)."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "CONN_MAX_AGE": None,  # one connection per thread, kept
        "OPTIONS": {
            # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue
            # (up to the busy timeout) instead of failing with "database is locked"
            # when a read inside a transaction turns into a write.
            "transaction_mode": "IMMEDIATE",
            # How long a writer waits for another's lock before "database is locked".
            "timeout": env_float("SQLITE_BUSY_TIMEOUT_S", 20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            **(options or {}),
        },
        "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
    }


def databases_from_env(base_dir: Path) -> dict:
    """``DATABASES``: PostgreSQL (or any) from ``DATABASE_URL``, else SQLite, the
    same whether named by ``SQLITE_PATH`` (default ``db.sqlite3``) or a URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        path = os.environ.get("SQLITE_PATH", str(base_dir / "db.sqlite3"))
        return {"default": sqlite_database(path)}
    if url.startswith("sqlite:"):
        parsed = dj_database_url.parse(url)
        return {"default": sqlite_database(parsed["NAME"], parsed.get("OPTIONS"))}
    # A pool per process (Django's, psycopg_pool): under ASGI every request runs
    # in a thread of its own, so per-thread persistent connections would open a
    # session per request, left for the garbage collector to close. Each use
    # takes a checked connection from the pool and gives it back after.
    pool_max = env_int("DATABASE_POOL_MAX", 20)
    if pool_max < 1:
        raise ImproperlyConfigured(
            f"DATABASE_POOL_MAX must be 1 or more, got {pool_max}."
        )
    config = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    config.setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, pool_max),
        "max_size": pool_max,
        "timeout": env_float("DATABASE_POOL_TIMEOUT_S", 10),
    }
    # Prepared statements: each pooled connection has PostgreSQL parse and plan
    # a statement once it has run it this many times (the hot path's few
    # statements run thousands of times), which needs server-side binding.
    # 0 keeps Django's client-side binding, for a pooler in front of PostgreSQL
    # that cannot hold prepared statements (PgBouncer in transaction mode
    # before 1.21).
    threshold = env_int("DATABASE_PREPARE_THRESHOLD", 5)
    if threshold < 0:
        raise ImproperlyConfigured(
            f"DATABASE_PREPARE_THRESHOLD must be 0 (off) or more, got {threshold}."
        )
    if threshold:
        config["OPTIONS"].update(server_side_binding=True, prepare_threshold=threshold)
    return {"default": config}
