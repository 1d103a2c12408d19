"""Schemathesis drives every REST operation of the OpenAPI schema against a live server:
no 500s, responses match the schema and their content type."""

import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import Api

pytestmark = pytest.mark.live

FUZZ_SECONDS = "30"


@pytest.fixture(scope="module")
def fuzz_server(deployment):
    """A process of its own, with REST write limits out of the fuzzer's way."""
    return deployment.start_server(
        "fuzz", REST_WRITE_RATE="1000000/min", REGISTER_RATE="1000000/min"
    )


def test_rest_api_survives_schema_driven_fuzzing(fuzz_server, deployment, tmp_path):
    deployment.create_staff("fuzzstaff")

    async def setup():
        client = Api(fuzz_server.url)
        staff = await client.login("fuzzstaff")
        await client.bam(staff, await client.account("fuzzpeer"))
        await client.close()
        return staff

    staff = asyncio.run(setup())
    binary = Path(sys.executable).with_name("schemathesis")
    assert binary.exists() or shutil.which("schemathesis"), "schemathesis not installed"
    result = subprocess.run(
        [
            str(binary),
            "run",
            f"{fuzz_server.url}/api/schema",
            "-H",
            f"Authorization: Bearer {staff.access}",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,"
            "status_code_conformance,response_headers_conformance",
            "--max-time",
            FUZZ_SECONDS,
            "--workers",
            "1",
            # These end the fuzzer's own session (every later call would be a 401);
            # tests/accounts/test_tokens.py covers them.
            "--exclude-path-regex",
            "^/auth/(logout-all|password)",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"schemathesis found failures:\n{report}"
    assert "Traceback" not in "".join(fuzz_server.log_lines), fuzz_server.log()


# Digits that str.isdigit() accepts but are no id: superscript, circled, Arabic-Indic,
# fullwidth. Each goes into every id position of the schema.
HOSTILE_IDS = ["\u00b2", "\u2460", "\u0661", "\uff11"]
DEEP = "[" * 50_000 + "]" * 50_000


def test_hostile_ids_and_deep_nesting_never_cause_a_server_error(
    fuzz_server, deployment
):
    deployment.create_staff("fuzzstaff2")

    async def probe() -> list[str]:
        client = Api(fuzz_server.url)
        failures = []
        try:
            staff = await client.login("fuzzstaff2")
            _, schema = await client.request(
                "GET", "/api/schema?format=json", token=staff.access, expect=200
            )
            for template, operations in schema["paths"].items():
                if template.startswith("/auth/"):
                    continue
                for method in operations:
                    if method not in ("get", "post", "put", "patch", "delete"):
                        continue
                    for digit in HOSTILE_IDS:
                        path = re.sub(r"\{[^}]+\}", digit, template)
                        body = {
                            "title": "t",
                            "text": "x",
                            "participantIds": [digit],
                            "userId": digit,
                            "userIds": [digit],
                            "toUserId": digit,
                            "data": {},
                        }
                        query = f"?after={digit}&page={digit}"
                        status, _ = await _send(
                            client, method, path + query, staff, json=body
                        )
                        if status >= 500:
                            failures.append(f"{method.upper()} {path} -> {status}")
                    if method in ("post", "put", "patch"):
                        path = re.sub(r"\{[^}]+\}", "1", template)
                        status, _ = await _send(
                            client,
                            method,
                            path,
                            staff,
                            data='{"title": "t", "data": ' + DEEP + "}",
                            headers={"Content-Type": "application/json"},
                        )
                        if status >= 500:
                            failures.append(f"deep {method.upper()} {path} -> {status}")
        finally:
            await client.close()
        return failures

    failures = asyncio.run(probe())
    assert not failures, "\n".join(failures) + "\n" + fuzz_server.log()
    assert "Traceback" not in "".join(fuzz_server.log_lines), fuzz_server.log()


async def _send(client: Api, method: str, path: str, who, **kw):
    headers = {"Authorization": f"Bearer {who.access}", **kw.pop("headers", {})}
    async with client.session.request(
        method.upper(), client.base + path, headers=headers, **kw
    ) as resp:
        await resp.read()
        return resp.status, None
