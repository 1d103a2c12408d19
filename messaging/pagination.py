import re

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

# A cursor position is a message seq: ASCII digits that fit a 64-bit column.
_POSITION = re.compile(r"[0-9]{1,18}")


class MessageHistoryPagination(CursorPagination):
    """History pages, newest first; with ``?after=<messageId>``, oldest first."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-seq"

    def get_ordering(self, request, queryset, view):
        if request.query_params.get("after"):
            return ("seq",)
        return ("-seq",)

    def decode_cursor(self, request):
        # DRF checks the offset but hands the position to the ORM as it came:
        # a forged ``p=abc`` would fail inside the query instead of being a 404.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            if not _POSITION.fullmatch(cursor.position):
                raise NotFound(self.invalid_cursor_message)
        return cursor
