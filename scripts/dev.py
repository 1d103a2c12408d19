#!/usr/bin/env python3
"""Set up and run BAM Chat: ``serve`` (embedded default) or ``test`` (all tests).

Needs only Python 3.11+. Creates ``.venv`` beside the project, installs the pinned
dependencies (again only when pyproject.toml changed), and for ``test`` installs
the JavaScript client with npm when Node is present.
"""

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
JS_DIR = ROOT / "tests" / "js"


def run(*cmd, env=None, cwd=ROOT) -> None:
    """Run a command, stopping the script with its exit code if it fails."""
    result = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv(extras: str) -> None:
    """Create the virtualenv and install the project (with ``extras``) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under any python3, pre-venv
        sys.exit(
            f"BAM Chat needs Python 3.11 or newer; this is {sys.version.split()[0]}."
        )
    if not PYTHON.exists():
        print(f"Creating virtualenv in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("Installing dependencies ...", flush=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(digest)


def ensure_js_client() -> None:
    """Install the official socket.io-client for the JS suite when Node exists."""
    if (
        not (shutil.which("node") and shutil.which("npm"))
        or not (JS_DIR / "package.json").exists()
    ):
        return
    lock = JS_DIR / "package-lock.json"
    stamp = JS_DIR / "node_modules" / ".installed"
    digest = hashlib.sha256(lock.read_bytes() if lock.exists() else b"").hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("Installing the JavaScript Socket.IO client (npm ci) ...", flush=True)
    npm = shutil.which("npm")
    run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=JS_DIR)
    stamp.write_text(digest)


def ensure_chromium() -> None:
    """Install Debian's Chromium and its driver for the browser test, where we can.

    Needs root and apt-get (as in CI); elsewhere the browser test skips and says why.
    """
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if not shutil.which("apt-get") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    print("Installing Chromium for the admin browser test (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "chromium", "chromium-driver", env=env)


def serve() -> None:
    """Migrate, create the demo accounts, serve http://127.0.0.1:8000 (daphne)."""
    ensure_venv("")
    env = {**os.environ, "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1")}
    run(PYTHON, "manage.py", "migrate", "--no-input", "-v", "0", env=env)
    run(PYTHON, "manage.py", "demo_accounts", env=env)
    print("Serving BAM Chat on http://127.0.0.1:8000 (Ctrl-C stops it)", flush=True)
    os.chdir(ROOT)
    daphne = BIN / "daphne"
    os.execve(
        str(daphne),
        [str(daphne), "-b", "127.0.0.1", "-p", "8000", "bamchat.asgi:application"],
        env,
    )


def suite_passes() -> list[tuple[str, list[str]]]:
    """The whole suite in two passes. The multi-process suites (marker
    ``services``: several servers, thousands of sockets, faults on a schedule)
    load the machine on their own, so they run alone; everything else runs first,
    one test file per core (pytest-xdist), up to four at a time."""
    workers = min(4, os.cpu_count() or 1)
    spread = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
    return [
        ("everything but the multi-process suites", [*spread, "-m", "not services"]),
        ("the multi-process suites, alone", ["-m", "services"]),
    ]


def test(args: list[str]) -> None:
    """Run the whole test suite; with arguments, pytest once with them instead."""
    ensure_venv("dev")
    ensure_js_client()
    ensure_chromium()
    env = dict(os.environ)
    # A throwaway signing key for this run only; live servers inherit it.
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    env.setdefault("PYTHONUNBUFFERED", "1")
    passes = [("pytest " + " ".join(args), args)] if args else suite_passes()
    failed = 0
    for number, (what, pass_args) in enumerate(passes, 1):
        if len(passes) > 1:
            print(f"== tests {number}/{len(passes)}: {what}", flush=True)
        cmd = [str(PYTHON), "-m", "pytest", *pass_args]
        result = subprocess.run(cmd, env=env, cwd=ROOT)
        failed = failed or result.returncode
    sys.exit(failed)


def main() -> None:
    command, *rest = sys.argv[1:] or ["help"]
    if command == "serve":
        serve()
    elif command == "test":
        test(rest)
    else:
        sys.exit("usage: python3 scripts/dev.py serve | test [pytest args]")


if __name__ == "__main__":
    main()
