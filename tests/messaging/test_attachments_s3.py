"""Attachments on an S3-compatible bucket: moto's standalone S3 server on loopback,
a live BAM Chat server configured for it by environment."""

import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import pytest_asyncio

from tests.deploy import Deployment
from tests.live import Api, ci
from tests.messaging.attachment_files import PDF, download, png, upload
from tests.services import free_port

pytestmark = pytest.mark.live

BUCKET = "bamchat-test"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
STARTUP_TIMEOUT_S = 30


def moto_server_path() -> str:
    """The moto_server of this environment; skip (fail in CI) without it."""
    path = Path(sys.executable).with_name("moto_server")
    if path.exists():
        return str(path)
    found = shutil.which("moto_server")
    if found:
        return found
    if ci():
        pytest.fail("moto_server (moto[server]) is not installed -- CI must run it")
    pytest.skip("moto_server (moto[server]) not installed: S3 test skipped")


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on a free loopback port, with an empty bucket."""
    port = free_port()
    process = subprocess.Popen(
        [moto_server_path(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            if line is None:
                raise RuntimeError("moto_server exited before listening")
            if re.search(rf"Running on http://127\.0\.0\.1:{port}", line):
                break
        url = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", **CREDENTIALS
        ).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_server(s3_endpoint, tmp_path_factory):
    """A live server whose file storage is the bucket (and no local media folder)."""
    media = tmp_path_factory.mktemp("unused-media")
    deployment = Deployment(
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=s3_endpoint,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID="test",
        S3_SECRET_ACCESS_KEY="test",
        MEDIA_ROOT=str(media),
    )
    try:
        server = deployment.start_server("s3")
        server.media = media
        yield server
    finally:
        deployment.close()


@pytest_asyncio.fixture
async def s3_api(s3_server):
    client = Api(s3_server.url)
    yield client
    await client.close()


async def test_uploads_land_in_the_bucket_and_download_from_it(
    s3_api, s3_server, s3_endpoint
):
    import boto3

    me = await s3_api.account()
    bam = await s3_api.bam(me)
    status, image = await upload(
        s3_api, me, bam["id"], png(640, 480), "i.png", "image/png"
    )
    assert status == 201 and image["kind"] == "image", image
    status, doc = await upload(s3_api, me, bam["id"], PDF, "d.pdf", "application/pdf")
    assert status == 201, doc

    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len([k for k in keys if k.startswith(f"attachments/{bam['id']}/")]) == 3, (
        keys
    )
    assert not any(s3_server.media.iterdir())  # nothing on the local disk

    got = await download(s3_api, doc["url"])
    assert got.status == 200 and got.body == PDF
    part = await download(s3_api, doc["url"], Range="bytes=0-4")
    assert part.status == 206 and part.body == b"%PDF-"
    thumb = await download(s3_api, image["thumbnailUrl"])
    assert thumb.status == 200 and thumb.headers["Content-Type"].startswith("image/")
