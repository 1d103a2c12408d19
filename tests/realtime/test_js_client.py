"""The official JS ``socket.io-client`` under Node against a live server.

Runs ``node --test`` in ``tests/js`` (the suite itself is in ``*.test.mjs``
there) with ``BAMCHAT_URL`` pointing at the session's daphne process. Every
event, ack and REST body the JS clients receive is written to a log and
validated here against the published contracts.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.contract import published
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
def test_official_js_client_suite(request, tmp_path):
    """Every ``tests/js/*.test.mjs`` passes against the live server, and all
    they receive keeps the published contracts."""
    node = node_or_skip()
    server = request.getfixturevalue("server")  # started only once Node is known
    log = tmp_path / "received.jsonl"
    env = {
        **os.environ,
        "BAMCHAT_URL": server.url,
        "BAMCHAT_CONTRACT_LOG": str(log),
        "NO_COLOR": "1",
    }
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
    violations = contract_violations(log.read_text().splitlines(), server.url)
    assert not violations, "JS clients received payloads outside the contract:\n" + (
        "\n".join(violations[:20])
    )


def contract_violations(lines: list[str], base_url: str) -> list[str]:
    """What in the JS clients' log breaks the published documents."""
    assert lines, "the JS suite recorded nothing: is BAMCHAT_CONTRACT_LOG honoured?"
    contract = published(base_url)
    found = []
    for line in lines:
        item = json.loads(line)
        kind, name, payload = item["kind"], item["name"], item["payload"]
        if kind == "event":
            errors = contract.event_errors(name, payload)
        elif kind == "ack":
            errors = contract.ack_errors(name, payload)
        else:
            method, path = name.split(" ", 1)
            errors = contract.response_errors(method, path, item["status"], payload)
        if errors:
            found.append(f"{kind} {name}: {'; '.join(errors)} -- {line[:500]}")
    return found
