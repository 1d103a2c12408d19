"""Upload size limit inside Django's multipart parser: it stops reading at the limit."""

import logging

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

logger = logging.getLogger(__name__)

# Room for the multipart boundaries and part headers around one file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_too_large(request) -> bool:
    """Whether the size-limit handler stopped this request's upload."""
    return getattr(request, "upload_too_large", False)


class SizeLimitUploadHandler(FileUploadHandler):
    """First upload handler: refuses a body whose Content-Length is over the limit
    without parsing it, and stops a file at the first chunk past the limit.

    It flags the request (``upload_too_large``) so the view answers 413; the other
    handlers (memory below FILE_UPLOAD_MAX_MEMORY_SIZE, a temporary file above)
    never see more than the limit.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.ATTACHMENT_MAX_BYTES

    def _refuse(self) -> None:
        if self.request is not None:
            self.request.upload_too_large = True

    def handle_raw_input(
        self, input_data, META, content_length, boundary, encoding=None
    ):
        if content_length > self.limit + MULTIPART_OVERHEAD_BYTES:
            self._refuse()
            # Handled: the parser reads none of the body.
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self._refuse()
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None
