"""What an uploaded file is, decided from its bytes: images are decoded with Pillow,
re-encoded without metadata and given a thumbnail; anything else is a file."""

import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence

from bamchat.errors import invalid

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_PX = 320  # the contract's thumbnail bound, on the longer side
# Formats we decode, with the content type their re-encoded bytes are served as.
IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
# Non-image types recognised by their first bytes; everything else is served as
# application/octet-stream (never text/html or image/svg+xml, whatever the claim).
FILE_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
GENERIC_TYPE = "application/octet-stream"
SNIFF_BYTES = 16
KEPT_INFO = ("transparency",)


@dataclass
class Encoded:
    """Bytes to store, with their content type (and size for images)."""

    data: bytes
    content_type: str


@dataclass
class Inspected:
    """The outcome of looking at an upload: an image (re-encoded) or a file."""

    kind: str
    content_type: str
    width: int | None = None
    height: int | None = None
    image: Encoded | None = None
    thumbnail: Encoded | None = None


def file_content_type(head: bytes) -> str:
    """The content type of a non-image from its first bytes (a safe default)."""
    for signature, content_type in FILE_SIGNATURES:
        if head.startswith(signature):
            return content_type
    return GENERIC_TYPE


def inspect_upload(fileobj) -> Inspected:
    """Decide what an upload is; an image comes back stripped and with a thumbnail.

    A decompression bomb (more pixels than Pillow's ``MAX_IMAGE_PIXELS``) is
    refused as Invalid; anything Pillow cannot fully decode is a file.
    """
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    fileobj.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and errors above twice that;
            # both are refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _inspect_image(fileobj)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise invalid("file", "Image too large to decode (too many pixels).") from None
    except _NotAnImage:
        pass
    except Exception as exc:  # Pillow raises many kinds on broken input
        logger.info("Upload kept as a file: %s", type(exc).__name__)
    return Inspected(kind="file", content_type=file_content_type(head))


class _NotAnImage(Exception):
    pass


def _inspect_image(fileobj) -> Inspected:
    try:
        source = Image.open(fileobj, formats=list(IMAGE_TYPES))
    except Image.UnidentifiedImageError:
        raise _NotAnImage from None
    with source:
        fmt = source.format
        frames = getattr(source, "n_frames", 1)
        if source.width * source.height * frames > Image.MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError("too many pixels across frames")
        source.load()  # a truncated or corrupt image fails here
        if frames > 1 and fmt in ("GIF", "WEBP"):
            data, first = _reencode_animated(source, fmt)
        else:
            first = _clean_copy(ImageOps.exif_transpose(source))
            data = _encode(first, fmt)
    thumbnail = _thumbnail(first)
    return Inspected(
        kind="image",
        content_type=IMAGE_TYPES[fmt],
        width=first.width,
        height=first.height,
        image=Encoded(data, IMAGE_TYPES[fmt]),
        thumbnail=thumbnail,
    )


def _clean_copy(image: Image.Image) -> Image.Image:
    """A copy of the pixels with no metadata (EXIF, XMP, ICC, text chunks)."""
    clean = image.copy()
    # Palette transparency is pixel data, not metadata: keep it.
    clean.info = {k: v for k, v in image.info.items() if k in KEPT_INFO}
    return clean


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=90, optimize=True)
    elif fmt == "WEBP":
        image.save(out, format="WEBP", quality=90)
    else:
        image.save(out, format=fmt, optimize=True)
    return out.getvalue()


def _reencode_animated(source: Image.Image, fmt: str) -> tuple[bytes, Image.Image]:
    durations = [info.get("duration", 100) for info in _frame_infos(source)]
    frames = [
        _clean_copy(frame.convert("RGBA")) for frame in ImageSequence.all_frames(source)
    ]
    out = io.BytesIO()
    frames[0].save(
        out,
        format=fmt,
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=source.info.get("loop", 0),
    )
    return out.getvalue(), frames[0]


def _frame_infos(source: Image.Image) -> list[dict]:
    infos = []
    for index in range(getattr(source, "n_frames", 1)):
        source.seek(index)
        infos.append(dict(source.info))
    source.seek(0)
    return infos


def _thumbnail(image: Image.Image) -> Encoded:
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX))
    out = io.BytesIO()
    if thumb.mode in ("RGBA", "LA", "P", "PA"):
        thumb.save(out, format="PNG", optimize=True)
        return Encoded(out.getvalue(), "image/png")
    if thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    thumb.save(out, format="JPEG", quality=85)
    return Encoded(out.getvalue(), "image/jpeg")
