"""Schemathesis drives every REST operation of the OpenAPI schema against a live server:
no 500s, responses match the schema and their content type."""

import asyncio
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
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-time",
            FUZZ_SECONDS,
            "--workers",
            "1",
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
