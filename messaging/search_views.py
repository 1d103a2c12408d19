"""GET /search/messages: a thin wrapper around ``messaging.search``."""

from urllib.parse import urlencode

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveUser
from messaging.search import message_search
from messaging.search_query import Q_MAX_CHARS
from messaging.serializers import MessageSerializer


class SearchHitSerializer(serializers.Serializer):
    """One message found (documents the shape ``message_search`` builds)."""

    bamId = serializers.CharField()
    message = MessageSerializer()
    snippet = serializers.CharField(
        help_text="Plain text, escaped, with <mark>…</mark> around matched words."
    )


class SearchPageSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="URL of the next (older) page, or null."
    )


class MessageSearchView(APIView):
    """Messages of the caller's BAMs matching a query, newest first."""

    permission_classes = [IsActiveUser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                required=True,
                description=(
                    f"1..{Q_MAX_CHARS} characters: words (all must match), "
                    '"a phrase", -word, or; the last word also matches as a prefix.'
                ),
            ),
            OpenApiParameter("bamId", OpenApiTypes.STR, description="One BAM only."),
            OpenApiParameter("from", OpenApiTypes.STR, description="Sender's id."),
            OpenApiParameter(
                "before", OpenApiTypes.DATETIME, description="Sent before (ISO)."
            ),
            OpenApiParameter(
                "after", OpenApiTypes.DATETIME, description="Sent after (ISO)."
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next`."),
        ],
        responses=SearchPageSerializer,
    )
    def get(self, request):
        params = request.query_params
        results, cursor = message_search(
            user=request.user,
            q=params.get("q"),
            bam_id=params.get("bamId"),
            from_user_id=params.get("from"),
            before=params.get("before"),
            after=params.get("after"),
            cursor=params.get("cursor"),
        )
        following = None
        if cursor is not None:
            query = {k: v for k, v in params.items() if k != "cursor"}
            following = request.build_absolute_uri(
                f"{request.path}?{urlencode({**query, 'cursor': cursor})}"
            )
        return Response({"results": results, "next": following})
