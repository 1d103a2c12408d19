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


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims far more pixels than Pillow decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (width * 3 + 1))  # one row; the rest is missing
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


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
