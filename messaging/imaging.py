"""What an uploaded file is, decided from its bytes: images are decoded with Pillow
within a pixel budget, re-encoded without metadata and given a thumbnail; anything
else is a file."""

import io
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps

from bamchat.errors import Invalid, invalid

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_PX = 320  # the contract's thumbnail bound, on the longer side
# Longest side decoded: Pillow keeps a pointer per row, so a PNG 1 px wide and 89 M
# rows tall cost 3 GB whatever its pixel count; long screenshots stay below this.
MAX_SIDE_PX = 30_000
# Most frames re-encoded: past this, per-frame overhead outweighs the pixels
# (1000 frames is 100 s at 10 frames a second).
MAX_FRAMES = 1000
# Formats whose every frame is decoded and re-encoded; of any other (an APNG) only
# the first frame is kept.
ANIMATED_FORMATS = ("GIF", "WEBP")
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

    An image whose decoding would pass the budget (ATTACHMENT_MAX_IMAGE_PIXELS over
    all frames, MAX_SIDE_PX, MAX_FRAMES) is refused as Invalid before any pixel is
    decoded; anything Pillow cannot fully decode is a file.
    """
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    fileobj.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow warns above its MAX_IMAGE_PIXELS and errors above twice that;
            # both are refused here, whatever ATTACHMENT_MAX_IMAGE_PIXELS says.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _inspect_image(fileobj)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise invalid("file", "Image too large to decode (too many pixels).") from None
    except Invalid:
        raise
    except _NotAnImage:
        pass
    except Exception as exc:  # Pillow raises many kinds on broken input
        logger.info("Upload kept as a file: %s", type(exc).__name__)
    return Inspected(kind="file", content_type=file_content_type(head))


class _NotAnImage(Exception):
    pass


_pools_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _decode_pool() -> ThreadPoolExecutor:
    """This process's ATTACHMENT_MAX_DECODES decoding threads: more decodes wait
    their turn. Always the same threads, so the memory a decode frees is what
    the next one takes; each request runs in a thread of its own, and decoding
    there took a fresh allocator arena each time, which kept what it freed."""
    count = settings.ATTACHMENT_MAX_DECODES
    with _pools_lock:
        pool = _pools.get(count)
        if pool is None:
            pool = _pools[count] = ThreadPoolExecutor(
                max_workers=count, thread_name_prefix="image-decode"
            )
        return pool


def _check_decode_budget(*, width: int, height: int, frames: int) -> None:
    """Invalid when decoding this many pixels and frames would pass the budget."""
    limit = settings.ATTACHMENT_MAX_IMAGE_PIXELS
    if (
        max(width, height) > MAX_SIDE_PX
        or frames > MAX_FRAMES
        or width * height * frames > limit
    ):
        raise invalid(
            "file",
            f"Image too large to decode ({width}x{height} px, {frames} frame(s)): "
            f"send one of at most {limit} pixels over all frames, "
            f"{MAX_SIDE_PX} px a side and {MAX_FRAMES} frames.",
        )


def _inspect_image(fileobj) -> Inspected:
    try:
        source = Image.open(fileobj, formats=list(IMAGE_TYPES))
    except Image.UnidentifiedImageError:
        raise _NotAnImage from None
    with source:
        fmt = source.format
        frames = getattr(source, "n_frames", 1) if fmt in ANIMATED_FORMATS else 1
        _check_decode_budget(width=source.width, height=source.height, frames=frames)
        return _decode_pool().submit(_decode, source, fmt, frames).result()


def _decode(source: Image.Image, fmt: str, frames: int) -> Inspected:
    """In a decoding thread: the image re-encoded without metadata, and its
    thumbnail."""
    if frames > 1:
        data, first = _reencode_animated(source, fmt)
    else:
        first = _decode_still(source)
        data = _encode(first, fmt)
    width, height = first.size
    thumbnail = _thumbnail(first)
    return Inspected(
        kind="image",
        content_type=IMAGE_TYPES[fmt],
        width=width,
        height=height,
        image=Encoded(data, IMAGE_TYPES[fmt]),
        thumbnail=thumbnail,
    )


def _strip(image: Image.Image) -> Image.Image:
    """The image with no metadata left (EXIF, XMP, ICC, comments, text chunks)."""
    # Palette transparency is pixel data, not metadata: keep it.
    image.info = {k: v for k, v in image.info.items() if k in KEPT_INFO}
    return image


def _decode_still(source: Image.Image) -> Image.Image:
    """The pixels, upright and stripped, in the one copy Pillow decoded."""
    source.load()  # a truncated or corrupt image fails here
    ImageOps.exif_transpose(source, in_place=True)
    return _strip(source)


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
    """Every frame re-encoded without metadata, and the first frame (stripped)."""
    durations = [info.get("duration", 100) for info in _frame_infos(source)]
    first = _strip(source.convert("RGBA"))
    out = io.BytesIO()
    first.save(
        out,
        format=fmt,
        save_all=True,
        append_images=_later_frames(source),
        duration=durations,
        loop=source.info.get("loop", 0),
    )
    return out.getvalue(), first


def _later_frames(source: Image.Image):
    """The frames after the first, decoded one at a time as they are written."""
    for index in range(1, source.n_frames):
        source.seek(index)
        yield _strip(source.convert("RGBA"))


def _frame_infos(source: Image.Image) -> list[dict]:
    infos = []
    for index in range(getattr(source, "n_frames", 1)):
        source.seek(index)
        infos.append(dict(source.info))
    source.seek(0)
    return infos


def _thumbnail(image: Image.Image) -> Encoded:
    """A thumbnail of at most THUMBNAIL_MAX_PX a side, shrinking ``image`` in place
    (by ``reduce`` first where the size allows: no copy of the full image)."""
    image.thumbnail((THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX))
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image.save(out, format="PNG", optimize=True)
        return Encoded(out.getvalue(), "image/png")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=85)
    return Encoded(out.getvalue(), "image/jpeg")
