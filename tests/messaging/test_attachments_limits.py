"""The upload size limit on a live server of its own (a small ATTACHMENT_MAX_BYTES)."""

import pytest
import pytest_asyncio

from tests.deploy import Deployment
from tests.live import Api
from tests.messaging.attachment_files import upload

pytestmark = pytest.mark.live

LIMIT = 1000
UPLOADS_PER_MINUTE = 4
QUOTA = 2 * LIMIT


@pytest.fixture(scope="module")
def small_server():
    """A live server that takes uploads of at most LIMIT bytes, QUOTA pending."""
    deployment = Deployment(
        ATTACHMENT_MAX_BYTES=str(LIMIT),
        ATTACHMENT_QUOTA_BYTES=str(QUOTA),
        UPLOAD_RATE=f"{UPLOADS_PER_MINUTE}/min",
    )
    try:
        yield deployment.start_server("small-uploads")
    finally:
        deployment.close()


@pytest_asyncio.fixture
async def small_api(small_server):
    client = Api(small_server.url)
    yield client
    await client.close()


async def test_file_at_the_limit_is_taken(small_api):
    me = await small_api.account()
    bam = await small_api.bam(me)
    status, att = await upload(
        small_api, me, bam["id"], b"x" * LIMIT, "a.bin", "text/plain"
    )
    assert status == 201, att
    assert att["size"] == LIMIT


@pytest.mark.parametrize(
    "size",
    [
        LIMIT + 1,  # stopped by the upload handler at the first chunk past the limit
        300_000,  # refused from Content-Length before the body is read
    ],
)
async def test_oversize_upload_is_413_too_large(small_api, size):
    me = await small_api.account()
    bam = await small_api.bam(me)
    status, body = await upload(
        small_api, me, bam["id"], b"x" * size, "big.bin", "text/plain"
    )
    assert status == 413, body
    assert body["code"] == "too_large", body
    _, listing = await small_api.request(
        "GET", f"/bams/{bam['id']}/messages", token=me.access, expect=200
    )
    assert listing["results"] == []


async def test_uploads_per_user_are_rate_limited(small_api):
    me, other = await small_api.account(), await small_api.account()
    bam = await small_api.bam(me, other)
    for _ in range(UPLOADS_PER_MINUTE):
        status, _ = await upload(small_api, me, bam["id"], b"x", "a.bin", "text/plain")
        assert status == 201
    status, body = await upload(small_api, me, bam["id"], b"x", "a.bin", "text/plain")
    assert status == 429, body
    status, _ = await upload(small_api, other, bam["id"], b"x", "a.bin", "text/plain")
    assert status == 201  # per user


async def test_pending_uploads_over_the_quota_are_413_too_large(small_api):
    me = await small_api.account()
    bam = await small_api.bam(me)
    kept = []
    for _ in range(QUOTA // LIMIT):
        status, att = await upload(
            small_api, me, bam["id"], b"x" * LIMIT, "a.bin", "text/plain"
        )
        assert status == 201, att
        kept.append(att["id"])
    status, body = await upload(small_api, me, bam["id"], b"x", "b.bin", "text/plain")
    assert status == 413, body
    assert body["code"] == "too_large", body
    await small_api.post_message(me, bam["id"], "", attachmentIds=kept[:1])
    status, body = await upload(small_api, me, bam["id"], b"x", "c.bin", "text/plain")
    assert status == 201, body
