"""What decoding an upload costs a live server, read from its peak RSS: small
files that unpack to huge images are refused before they are decoded, and what is
decoded stays within the pixel budget, a bounded number at a time."""

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

from tests.deploy import Deployment
from tests.live import Api
from tests.messaging.attachment_files import animation, png_solid, upload

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not Path("/proc/self/clear_refs").exists(), reason="peak RSS needs Linux"
    ),
]

MB = 1024 * 1024
# Bounds with at least twice the room measured (figures: before the budget, after).
REFUSED_MAX_ADDED = 50 * MB  # 0.7-3 GB decoded, now a few MB
DECODE_MAX_ADDED = 200 * MB  # 25 Mpx PNG: 300 MB, now 100 MB
ANIMATION_MAX_ADDED = 100 * MB  # 100 frames of 500 x 500: 190 MB, now 35 MB
# Three at once cost about twice one decode: at most ATTACHMENT_MAX_DECODES (2)
# decode together (three slots measured 2.9 times one).
PARALLEL_MAX_FACTOR = 2.5
BUDGET_SIDE = 5000  # 5000 x 5000 = the default ATTACHMENT_MAX_IMAGE_PIXELS
# One decode of it: Pillow keeps RGB in 4 bytes a pixel. The yardstick is this
# size, not a measured single upload: what the allocator kept from earlier
# decodes makes that one add anywhere from 72 to 98 MB to the peak.
DECODED_BYTES = BUDGET_SIDE * BUDGET_SIDE * 4


@pytest.fixture(scope="module")
def image_server():
    """A live server of its own (default settings), so its peak RSS is ours."""
    deployment = Deployment()
    try:
        yield deployment.start_server("imaging")
    finally:
        deployment.close()


@pytest_asyncio.fixture
async def image_api(image_server):
    client = Api(image_server.url)
    yield client
    await client.close()


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> int:
    """Make the process's peak RSS its current RSS, and return that."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_bytes(pid, "VmRSS")


async def _added_peak(server, uploads) -> tuple[list, int]:
    """Run the uploads together; their results and how far they raised peak RSS."""
    before = _reset_peak(server.process.pid)
    results = await asyncio.gather(*uploads)
    return results, _status_bytes(server.process.pid, "VmHWM") - before


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: png_solid(9440, 9440), "89mpx.png"),  # under Pillow's 89.5 Mpx
        (lambda: png_solid(1, 89_000_000), "tall.png"),
        (lambda: animation("GIF", 1000, 1000, 89), "frames.gif"),
        (lambda: animation("WEBP", 2000, 2000, 20), "frames.webp"),
    ],
)
async def test_images_over_the_budget_are_refused_before_decoding(
    image_api, image_server, make, name
):
    me = await image_api.account("img")
    bam = await image_api.bam(me)
    data = make()
    assert len(data) < 400_000  # small files, well under the upload limit
    [(status, body)], added = await _added_peak(
        image_server, [upload(image_api, me, bam["id"], data, name, "image/png")]
    )
    outcome = f"{name}: {status} {body}, +{added // MB} MB"
    assert added < REFUSED_MAX_ADDED, outcome
    assert status == 400 and "file" in body, outcome


async def test_an_image_at_the_budget_is_decoded_in_bounded_memory(
    image_api, image_server
):
    me = await image_api.account("img")
    bam = await image_api.bam(me)
    data = png_solid(BUDGET_SIDE, BUDGET_SIDE)
    [(status, att)], added = await _added_peak(
        image_server, [upload(image_api, me, bam["id"], data, "big.png", "image/png")]
    )
    assert status == 201, att
    assert (att["kind"], att["width"], att["height"]) == ("image", 5000, 5000)
    assert att["thumbnailUrl"] is not None
    assert added < DECODE_MAX_ADDED, f"+{added // MB} MB"


async def test_an_animation_within_the_budget_keeps_its_frames_in_bounded_memory(
    image_api, image_server
):
    me = await image_api.account("img")
    bam = await image_api.bam(me)
    data = animation("GIF", 500, 500, 100)  # 25 Mpx over all frames
    [(status, att)], added = await _added_peak(
        image_server, [upload(image_api, me, bam["id"], data, "a.gif", "image/gif")]
    )
    assert status == 201, att
    assert (att["kind"], att["width"], att["height"]) == ("image", 500, 500)
    assert added < ANIMATION_MAX_ADDED, f"+{added // MB} MB"


async def test_parallel_decodes_wait_for_a_slot(image_api, image_server):
    me = await image_api.account("img")
    bam = await image_api.bam(me)
    data = png_solid(BUDGET_SIDE, BUDGET_SIDE)

    def send(name: str):
        return upload(image_api, me, bam["id"], data, name, "image/png")

    status, _ = await send("one.png")  # warmed up
    assert status == 201
    results, three = await _added_peak(
        image_server, [send(f"{n}.png") for n in range(3)]
    )
    assert [status for status, _ in results] == [201] * 3, results
    assert three < PARALLEL_MAX_FACTOR * DECODED_BYTES, (
        f"three at once +{three // MB} MB, one decode {DECODED_BYTES // MB} MB"
    )
