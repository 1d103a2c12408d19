"""REST views of attachments: the upload, and downloads by signed URL or Bearer token
(ETag, Range, never sniffed, never HTML inline)."""

import logging
import re

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveUser
from bamchat.errors import TooLarge
from messaging.attachments import (
    ORIGINAL,
    THUMBNAIL,
    attachment_for_download,
    attachment_payload,
    attachment_upload,
)
from messaging.imaging import FILE_SIGNATURES, GENERIC_TYPE
from messaging.models import Attachment
from messaging.selectors import bam_get_for_participant
from messaging.serializers import AttachmentSerializer
from messaging.uploads import upload_too_large

logger = logging.getLogger(__name__)

STREAM_CHUNK_BYTES = 64 * 1024
# Only types that browsers render as images are ever served inline.
INLINE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Larger than any stored file; bigger Range positions are read as this one.
POSITION_MAX = 10**18
# Every type a download may carry: decoded images, recognised files, the rest.
DOWNLOAD_TYPES = (*sorted(INLINE_TYPES), *(t for _, t in FILE_SIGNATURES), GENERIC_TYPE)
DOWNLOAD_RESPONSES = {
    **{(code, t): OpenApiTypes.BINARY for code in (200, 206) for t in DOWNLOAD_TYPES},
    304: None,
    416: None,
}


class AttachmentUploadView(APIView):
    """Upload a file to a BAM (multipart field ``file``); participants only."""

    permission_classes = [IsActiveUser]
    parser_classes = [MultiPartParser]
    throttle_scope = "upload"

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={201: AttachmentSerializer},
    )
    def post(self, request, bam_id):
        # Outsiders learn nothing, not even the size limit: check access first.
        bam_get_for_participant(bam_id=bam_id, user=request.user)
        files = request.FILES  # parses the body, through the size-limit handler
        if upload_too_large(request._request):
            raise TooLarge("The file is larger than the server accepts.")
        attachment = attachment_upload(
            bam_id=bam_id, uploader=request.user, upload=files.get("file")
        )
        return Response(attachment_payload(attachment), status=status.HTTP_201_CREATED)


class AnyContentNegotiation(BaseContentNegotiation):
    """Downloads answer whatever the client accepts (an ``<img>`` asks for image/*)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AttachmentDownloadView(APIView):
    """The bytes of an attachment or its thumbnail, for a valid ``sig`` or a
    participant's token; 404 for everyone else."""

    permission_classes = [permissions.AllowAny]
    content_negotiation_class = AnyContentNegotiation
    variant = ORIGINAL

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "sig", OpenApiTypes.STR, description="Signature from `url`."
            )
        ],
        responses=DOWNLOAD_RESPONSES,
    )
    def get(self, request, attachment_id):
        attachment = attachment_for_download(
            attachment_id=attachment_id,
            user=request.user,
            sig=request.query_params.get("sig"),
            variant=self.variant,
        )
        return download_response(request, attachment, variant=self.variant)


class AttachmentThumbnailView(AttachmentDownloadView):
    """The thumbnail (≤ 320 px) of an image attachment."""

    variant = THUMBNAIL


def download_response(request, attachment: Attachment, *, variant: str):
    """A streamed download with ETag (304 on a match) and single-range (206) support."""
    if variant == THUMBNAIL:
        name, content_type = attachment.thumbnail, attachment.thumbnail_content_type
        etag = f'"{attachment.digest}-thumb"'
    else:
        name, content_type = attachment.file, attachment.content_type
        etag = f'"{attachment.digest}"'
    inline = content_type in INLINE_TYPES
    if _etag_matches(request.headers.get("If-None-Match", ""), etag):
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        return _finish(response, etag)
    fileobj = default_storage.open(name, "rb")
    size = default_storage.size(name)
    byte_range = _range(request, etag=etag, size=size)
    if byte_range == "unsatisfiable":
        fileobj.close()
        response = HttpResponse(status=status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE)
        response["Content-Range"] = f"bytes */{size}"
        return _finish(response, etag)
    body = fileobj
    if byte_range is not None:
        start, end = byte_range
        fileobj.seek(start)
        body = _Slice(fileobj, end - start + 1)
    response = FileResponse(
        body,
        as_attachment=not inline,
        filename=attachment.name,
        content_type=content_type if inline else _download_type(content_type),
    )
    response["Accept-Ranges"] = "bytes"
    if byte_range is not None:
        start, end = byte_range
        response.status_code = status.HTTP_206_PARTIAL_CONTENT
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response["Content-Length"] = str(size)
    return _finish(response, etag)


def _download_type(content_type: str) -> str:
    # Stored types are decided from the bytes; this keeps any other one harmless.
    if content_type.startswith("application/"):
        return content_type
    return "application/octet-stream"


def _finish(response, etag: str):
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    # Signed URLs are capabilities: private caches only, and revalidate by ETag.
    response["Cache-Control"] = "private, max-age=0, must-revalidate"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _etag_matches(header: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return "*" in tags or etag in tags


def _range(request, *, etag: str, size: int):
    """(start, end) of a single satisfiable ``Range``, None for the whole file, or
    ``"unsatisfiable"``; several ranges, or a stale ``If-Range``, give the whole."""
    header = request.headers.get("Range")
    if not header or size == 0:
        # RFC 9110 14.2: Range may be ignored when there is no content; a 206
        # of nothing has no Content-Range that could say so.
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    match = SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = (_position(digits) for digits in match.groups())
    if first is None and last is None:
        return None
    if first is None:  # the final N bytes
        if last == 0:
            return "unsatisfiable"
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        return "unsatisfiable"
    return first, size - 1 if last is None else min(last, size - 1)


def _position(digits: str) -> int | None:
    """A ``Range`` position (None when absent) capped at POSITION_MAX, so a numeral
    of any length is read without converting it whole (RFC 9110 14.1.2)."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(POSITION_MAX)):
        return POSITION_MAX
    return min(int(digits), POSITION_MAX)


class _Slice:
    """A read-only window of ``length`` bytes of a file, from its current position."""

    def __init__(self, fileobj, length: int) -> None:
        self.fileobj = fileobj
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.fileobj.read(min(size, STREAM_CHUNK_BYTES))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fileobj.close()
