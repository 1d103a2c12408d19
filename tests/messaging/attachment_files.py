"""Files for the attachment tests, made on the spot (Pillow for images), and the
REST helpers that upload and download them against a live server."""

import io
import struct
import zlib
from dataclasses import dataclass

import aiohttp
from PIL import Image

GPS_IFD = 0x8825
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
HTML = (
    b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
)


def png(width: int = 800, height: int = 600) -> bytes:
    """A PNG of noise (so it does not compress to nothing)."""
    image = Image.effect_noise((width, height), 64).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 1024, height: int = 768) -> bytes:
    """A JPEG whose EXIF carries a camera model and a GPS position."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "BAM Camera"  # Model
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def _png(header: bytes, pixels: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims far more pixels than Pillow decodes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (width * 3 + 1))  # one row; the rest is missing
    return _png(header, pixels)


def png_solid(width: int, height: int) -> bytes:
    """A complete RGB PNG of one colour, a few hundred KB whatever its pixel count.

    The rows are deflated once, in blocks ending in a full flush (no reference
    back past it), so the same compressed block is repeated for the whole image.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x07" * (width * 3)  # filter byte, then the pixels
    rows_per_block = max(1, (1 << 20) // len(row))
    blocks, rest = divmod(height, rows_per_block)
    block = row * rows_per_block
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw: no zlib header
    packed = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(row * rest) + deflate.flush()
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    stream = b"\x78\xda" + packed * blocks + tail + struct.pack(">I", checksum)
    return _png(header, stream)


def animation(fmt: str, width: int, height: int, frames: int) -> bytes:
    """An animated GIF or WebP whose frames alternate between two colours."""
    if fmt == "GIF":  # palette frames: nothing to quantize
        images = [Image.new("P", (width, height), i % 2) for i in range(frames)]
        for image in images:
            image.putpalette([0, 0, 0, 255, 0, 0])
        options = {}
    else:
        images = [
            Image.new("RGB", (width, height), (255 * (i % 2), 0, 0))
            for i in range(frames)
        ]
        options = {"lossless": True}
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], **options)
    return out.getvalue()


@dataclass
class Download:
    status: int
    headers: dict
    body: bytes


async def upload(api, who, bam_id: str, data: bytes, filename: str, content_type: str):
    """POST a multipart upload (field ``file``); returns (status, JSON body)."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    return await api.request(
        "POST", f"/bams/{bam_id}/attachments", token=who.access, data=form
    )


async def download(api, url: str, *, token: str | None = None, **headers) -> Download:
    """GET a download URL (a path from a payload), without or with a Bearer token."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with api.session.get(api.base + url, headers=headers) as resp:
        return Download(resp.status, resp.headers.copy(), await resp.read())
