"""What an upload is, from its bytes: every image format re-encoded without metadata."""

import io

import pytest
from PIL import Image, PngImagePlugin

from bamchat.errors import Invalid
from messaging.imaging import MAX_SIDE_PX, inspect_upload
from tests.messaging.attachment_files import (
    GPS_IFD,
    HTML,
    PDF,
    animation,
    png_bomb,
    png_solid,
)


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


def test_comments_and_text_chunks_are_stripped_too():
    jpeg = _encode(Image.new("RGB", (64, 64)), "JPEG", comment=b"secret-comment")
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret-author")
    png = _encode(Image.new("RGB", (64, 64)), "PNG", pnginfo=info)
    for source, secret in ((jpeg, b"secret-comment"), (png, b"secret-author")):
        assert secret in source.getvalue()  # the premise
        result = inspect_upload(source)
        assert secret not in result.image.data + result.thumbnail.data


def test_animated_webp_loses_exif_and_its_thumbnail_is_the_first_frame():
    frames = [Image.new("RGB", (400, 200), c) for c in ((255, 0, 0), (0, 0, 255))]
    source = _encode(
        frames[0], "WEBP", save_all=True, append_images=frames[1:], exif=_exif()
    )
    assert b"BAM Camera" in source.getvalue()  # the premise
    result = inspect_upload(source)
    out = Image.open(io.BytesIO(result.image.data))
    assert (out.n_frames, out.size) == (2, (400, 200))
    assert b"BAM Camera" not in result.image.data
    thumb = Image.open(io.BytesIO(result.thumbnail.data)).convert("RGB")
    red, _, blue = thumb.getpixel((10, 10))
    assert thumb.size == (320, 160) and red > 200 and blue < 50  # red, lossy


@pytest.mark.parametrize(
    "make, accepted",
    [
        (lambda: png_solid(100, 100), True),  # the budget exactly
        (lambda: png_solid(101, 100), False),
        (lambda: animation("GIF", 50, 50, 4), True),
        (lambda: animation("GIF", 50, 50, 5), False),  # frames count
        (lambda: png_solid(1, MAX_SIDE_PX + 1), False),  # pixels allow, the side not
    ],
)
def test_the_decode_budget_counts_pixels_frames_and_sides(settings, make, accepted):
    settings.ATTACHMENT_MAX_IMAGE_PIXELS = 10_000
    if accepted:
        assert inspect_upload(io.BytesIO(make())).kind == "image"
    else:
        with pytest.raises(Invalid) as refused:
            inspect_upload(io.BytesIO(make()))
        assert "file" in refused.value.fields
