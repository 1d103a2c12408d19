from rest_framework.pagination import CursorPagination


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
