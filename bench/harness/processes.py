"""Server processes, and the profilers attached to them (py-spy, or yappi inside)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .config import BENCH, HOST, ROOT, VENV_BIN, HarnessError, Server
from .system import free_port


class Running:
    """One server process on 127.0.0.1."""

    def __init__(self, server: Server, env: dict[str, str], log_path: Path) -> None:
        self.server = server
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in server.argv]
        self.log_path = log_path
        self._log = open(log_path, "w")  # closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"{self.server.label} exited ({self.process.returncode}):\n"
                    + self.log_tail()
                )
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers HTTP: it is up
            except OSError:
                time.sleep(0.1)
        raise HarnessError(f"{self.server.label} did not answer within {timeout}s")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()


def deflate_negotiated(url: str) -> bool | None:
    """Whether the server accepts permessage-deflate when a client offers it."""
    port = int(url.rsplit(":", 1)[1])
    request = (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    try:
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(request.encode())
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    if " 101 " not in head.split("\r\n", 1)[0] + " ":
        return None
    return "permessage-deflate" in head


class Profiler:
    """py-spy sampling a server during a phase's measured window (``--profile``).

    Extra py-spy arguments (e.g. ``--gil``) come from ``BENCH_PYSPY_ARGS``.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.first = self.out = out
        self.proc: subprocess.Popen | None = None

    def __call__(self, what: str) -> None:
        """``start [label]`` opens a window (``label`` names a second file for
        the phase, e.g. the idle hold), ``end`` closes it."""
        what, _, label = what.partition(" ")
        if what == "start" and self.proc is None:
            self.out = self.first.with_name(
                f"{self.first.stem}-{label}.txt" if label else self.first.name
            )
            argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(self.pid)]
            # Blocking mode (py-spy pauses the process for each sample): slower,
            # but it tells idle threads apart, so samples follow CPU time.
            argv += ["--format", "raw", "--rate", "100"]
            argv += os.environ.get("BENCH_PYSPY_ARGS", "").split()
            self.proc = subprocess.Popen(
                [*argv, "-o", str(self.out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # let it attach before the window opens
        elif what == "end":
            self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.out.exists():
            from profile_summary import summarize

            summary = self.out.with_suffix(".summary.txt")
            summary.write_text(summarize(self.out) + "\n")


@dataclass(frozen=True)
class Profiling:
    """``--profile``: where the profiles go, and which profiler makes them."""

    folder: Path
    kind: str  # "stacks" (py-spy, outside) or "cpu" (yappi, inside)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return cpu_profile_env(env, self.folder) if self.kind == "cpu" else env

    def attach(self, pid: int, out: Path):
        return (CpuProfiler if self.kind == "cpu" else Profiler)(pid, out)

    def missing(self) -> str | None:
        """Why this profiler cannot run, if it cannot."""
        if self.kind == "stacks":
            tool, found = "py-spy", (VENV_BIN / "py-spy").exists()
        else:
            tool = "yappi"
            check = [str(VENV_BIN / "python"), "-c", "import yappi"]
            found = subprocess.run(check, capture_output=True).returncode == 0
        if found:
            return None
        install = f".venv/bin/pip install {tool}"
        return f"--profile {self.kind}: {tool} is not in .venv ({install})"

    def compare(self) -> None:
        """CPU profiles: each phase of the cluster against one process (PG+Redis),
        into ``cluster-vs-daphne-pg-<phase>.txt``."""
        if self.kind != "cpu":
            return
        from profile_compare import compare

        for base in sorted(self.folder.glob("daphne-pg-*.pstat")):
            phase = base.stem.removeprefix("daphne-pg-")
            parts = sorted(self.folder.glob(f"cluster-{phase}-p*.pstat"))
            if parts:
                out = self.folder / f"cluster-vs-daphne-pg-{phase}.txt"
                out.write_text(compare(base, parts) + "\n")


def cpu_profile_env(env: dict[str, str], out: Path) -> dict[str, str]:
    """``env`` for a server that ``CpuProfiler`` can profile: the hook of
    ``bench/profiling`` first on its path, writing into ``out``."""
    path = [str(BENCH / "profiling"), env.get("PYTHONPATH", "")]
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "BENCH_CPU_PROFILE_DIR": str(out),
    }


class CpuProfiler:
    """yappi inside a server (``--profile cpu``, see ``bench/profiling``): each
    function's CPU time and calls during a phase's measured window."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.first = self.out = out.with_suffix(".pstat")
        self.running = False

    def __call__(self, what: str) -> None:
        what, _, label = what.partition(" ")
        if what == "start" and not self.running:
            stem = f"{self.first.stem}-{label}" if label else self.first.stem
            self.out = self.first.with_name(stem + ".pstat")
            os.kill(self.pid, signal.SIGUSR1)
            self.running = True
        elif what == "end":
            self.stop()

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        written = self.out.parent / f"{self.pid}.pstat"
        try:
            os.kill(self.pid, signal.SIGUSR2)
        except ProcessLookupError:
            return  # the server exited: the phase says so
        deadline = time.monotonic() + 30
        while not written.exists():  # the process writes it between two events
            if time.monotonic() > deadline:
                raise HarnessError(f"no CPU profile from pid {self.pid} in 30 s")
            time.sleep(0.05)
        written.rename(self.out)
        listing = written.with_name(f"{self.pid}.threads.json")
        if listing.exists():
            listing.rename(self.out.with_name(self.out.stem + ".threads.json"))
        from profile_compare import summarize

        self.out.with_suffix(".summary.txt").write_text(summarize(self.out) + "\n")
