"""Settings read from the environment: each way of naming a database configures it
the same way."""

import json
import os
import subprocess
import sys

import pytest

from tests.live import ROOT

PRINT_DATABASE = (
    "import json, bamchat.settings as s; "
    "print(json.dumps(s.DATABASES['default'], sort_keys=True))"
)


def database_settings(**env: str) -> dict:
    """``DATABASES['default']`` as the settings module builds it from ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SQLITE_PATH", "SQLITE_BUSY_TIMEOUT_S")
    }
    done = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE],
        cwd=ROOT,
        env={**base, "DJANGO_SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_sqlite_url_gets_the_same_settings_as_the_default_path(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    default = database_settings(SQLITE_PATH=path)
    from_url = database_settings(DATABASE_URL=f"sqlite:///{path}")
    assert from_url == default
    assert default["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in default["OPTIONS"]["init_command"]


def test_options_in_a_sqlite_url_override_single_defaults(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    default = database_settings(SQLITE_PATH=path)
    from_url = database_settings(DATABASE_URL=f"sqlite:///{path}?timeout=3")
    assert from_url["OPTIONS"] == {**default["OPTIONS"], "timeout": 3}


def test_the_busy_timeout_is_one_setting_for_both_names(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    for env in ({"SQLITE_PATH": path}, {"DATABASE_URL": f"sqlite:///{path}"}):
        options = database_settings(SQLITE_BUSY_TIMEOUT_S="0.5", **env)["OPTIONS"]
        assert options["timeout"] == 0.5, env


def test_postgresql_gets_a_bounded_pool_and_no_per_thread_connections():
    url = "postgres://bamchat@127.0.0.1:5432/bamchat"
    default = database_settings(DATABASE_URL=url)
    assert default["CONN_MAX_AGE"] == 0
    assert default["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 20, "timeout": 10}
    sized = database_settings(
        DATABASE_URL=url, DATABASE_POOL_MAX="1", DATABASE_POOL_TIMEOUT_S="2.5"
    )
    assert sized["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 1, "timeout": 2.5}


def test_postgresql_prepares_what_it_runs_often_unless_told_not_to():
    url = "postgres://bamchat@127.0.0.1:5432/bamchat"
    options = database_settings(DATABASE_URL=url)["OPTIONS"]
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5
    options = database_settings(DATABASE_URL=url, DATABASE_PREPARE_THRESHOLD="2")[
        "OPTIONS"
    ]
    assert options["prepare_threshold"] == 2
    off = database_settings(DATABASE_URL=url, DATABASE_PREPARE_THRESHOLD="0")
    assert "server_side_binding" not in off["OPTIONS"]
    assert "prepare_threshold" not in off["OPTIONS"]


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("DATABASE_POOL_MAX", "0", "DATABASE_POOL_MAX must be 1 or more, got 0."),
        (
            "DATABASE_PREPARE_THRESHOLD",
            "-1",
            "DATABASE_PREPARE_THRESHOLD must be 0 (off) or more, got -1.",
        ),
    ],
)
def test_a_database_setting_out_of_range_is_refused_at_start(name, value, refusal):
    base = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    done = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SECRET_KEY": "x" * 50,
            "DATABASE_URL": "postgres://bamchat@127.0.0.1:5432/bamchat",
            name: value,
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert refusal in done.stderr


def gc_thresholds_of_a_server_process(**env: str) -> subprocess.CompletedProcess:
    """What a process that loaded the ASGI application (as daphne does) has set."""
    base = {k: v for k, v in os.environ.items() if k != "GC_THRESHOLDS"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, bamchat.asgi; print(','.join(map(str, gc.get_threshold())))",
        ],
        cwd=ROOT,
        env={**base, "DJANGO_SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
    )


def test_a_server_process_collects_its_young_objects_less_often():
    assert gc_thresholds_of_a_server_process().stdout.strip() == "50000,20,100"
    tuned = gc_thresholds_of_a_server_process(GC_THRESHOLDS="1000,10,10")
    assert tuned.stdout.strip() == "1000,10,10"
    bad = gc_thresholds_of_a_server_process(GC_THRESHOLDS="700,0,10")
    assert bad.returncode != 0
    assert "GC_THRESHOLDS must be 3 whole numbers above 0" in bad.stderr
