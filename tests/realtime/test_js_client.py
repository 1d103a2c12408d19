"""The official JS ``socket.io-client`` under Node against a live server.

Runs ``node --test`` in ``tests/js`` (the suite itself is in ``*.test.mjs``
there) with ``BAMCHAT_URL`` pointing at the session's daphne process.
"""

import os
import shutil
import subprocess

import pytest

from tests.live import ROOT, ci

JS_DIR = ROOT / "tests" / "js"
# The JS suite takes ~20 s; this bounds a hung run inside pytest's own timeout.
NODE_TIMEOUT_S = 100


def node_or_skip() -> str:
    """Path of ``node`` with the client installed; skip, or fail in CI, without."""
    node = shutil.which("node")
    if node and (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        return node
    if node is None:
        reason = "Node.js not installed: JS client suite skipped"
    else:
        reason = "tests/js/node_modules missing (npm ci): JS client suite skipped"
    if ci():
        pytest.fail(f"{reason} -- CI must run it", pytrace=False)
    pytest.skip(reason)


def text_of(output) -> str:
    """Captured output as text (a timed-out run may hand back bytes or nothing)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def report(stdout, stderr, server) -> str:
    """Node's output and the server's log tail, for a failure message."""
    return (
        f"--- node stdout ---\n{text_of(stdout)}\n"
        f"--- node stderr ---\n{text_of(stderr)}\n"
        f"--- server log ---\n{server.log()}"
    )


@pytest.mark.node
@pytest.mark.live
def test_official_js_client_suite(request):
    """Every ``tests/js/*.test.mjs`` passes against the live server."""
    node = node_or_skip()
    server = request.getfixturevalue("server")  # started only once Node is known
    env = {**os.environ, "BAMCHAT_URL": server.url, "NO_COLOR": "1"}
    try:
        result = subprocess.run(
            [node, "--test", "--test-reporter=spec"],
            cwd=JS_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"node --test did not finish within {NODE_TIMEOUT_S}s\n"
            + report(exc.stdout, exc.stderr, server)
        )
    details = report(result.stdout, result.stderr, server)
    assert result.returncode == 0, f"node --test exited {result.returncode}\n{details}"
