"""What an upload is, from its bytes: every image format re-encoded without metadata."""

import io

import pytest
from PIL import Image

from bamchat.errors import Invalid
from messaging.imaging import inspect_upload
from tests.messaging.attachment_files import GPS_IFD, HTML, PDF, png_bomb


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0110] = "BAM Camera"
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0)}
    return exif


def _encode(image: Image.Image, fmt: str, **options) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    out.seek(0)
    return out


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_still_images_lose_exif_and_keep_their_format(fmt):
    source = _encode(Image.new("RGB", (700, 350), (10, 200, 30)), fmt, exif=_exif())
    result = inspect_upload(source)
    assert result.kind == "image"
    assert result.content_type == f"image/{fmt.lower()}"
    out = Image.open(io.BytesIO(result.image.data))
    assert (out.format, out.size) == (fmt, (700, 350))
    assert not out.getexif()
    assert Image.open(io.BytesIO(result.thumbnail.data)).size == (320, 160)


def test_animated_gif_keeps_its_frames():
    colors = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    frames = [Image.new("RGB", (120, 80), color) for color in colors]
    source = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    result = inspect_upload(source)
    out = Image.open(io.BytesIO(result.image.data))
    assert (result.content_type, out.n_frames, out.size) == ("image/gif", 3, (120, 80))


def test_exif_orientation_is_applied_before_stripping():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    source = _encode(Image.new("RGB", (400, 200)), "JPEG", exif=exif)
    result = inspect_upload(source)
    assert (result.width, result.height) == (200, 400)


@pytest.mark.parametrize(
    "data, content_type",
    [
        (PDF, "application/pdf"),
        (HTML, "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_non_images_are_files_typed_from_their_bytes(data, content_type):
    result = inspect_upload(io.BytesIO(data))
    assert (result.kind, result.content_type, result.image) == (
        "file",
        content_type,
        None,
    )


def test_decompression_bomb_is_invalid():
    with pytest.raises(Invalid):
        inspect_upload(io.BytesIO(png_bomb()))
