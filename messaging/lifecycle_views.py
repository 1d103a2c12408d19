"""REST routes of the message lifecycle: edit, delete, react, mark read.

Each calls the same service as its Socket.IO event (``messaging.lifecycle``).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveUser
from messaging import lifecycle
from messaging.cleaning import message_text_of
from messaging.event_serializers import (
    MessageEditSerializer,
    ReactionAddSerializer,
    ReactionsResultSerializer,
    ReadMarkSerializer,
    ReadResultSerializer,
)
from messaging.serializers import MessageSerializer
from messaging.views import request_object

REACTIONS = ReactionsResultSerializer


class MessageDetailView(APIView):
    """Edit (the sender) or delete (the sender or the owner) one message."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(
        request=MessageEditSerializer,
        responses=MessageSerializer,
    )
    def patch(self, request, bam_id, message_id):
        body = request_object(request)
        message = lifecycle.message_edit(
            bam_id=bam_id,
            message_id=message_id,
            user=request.user,
            content=message_text_of(body),
        )
        return Response(MessageSerializer(message).data)

    @extend_schema(responses={204: None})
    def delete(self, request, bam_id, message_id):
        lifecycle.message_delete(
            bam_id=bam_id, message_id=message_id, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReactionListView(APIView):
    """Add the caller's reaction to a message."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(
        request=ReactionAddSerializer,
        responses=REACTIONS,
    )
    def post(self, request, bam_id, message_id):
        reactions = lifecycle.reaction_set(
            bam_id=bam_id,
            message_id=message_id,
            user=request.user,
            emoji=request_object(request).get("emoji"),
        )
        return Response({"messageId": str(message_id), "reactions": reactions})


class ReactionDetailView(APIView):
    """Remove the caller's reaction from a message."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    # A DELETE is documented as a 204 unless its success code is named.
    @extend_schema(responses={200: REACTIONS})
    def delete(self, request, bam_id, message_id, emoji):
        reactions = lifecycle.reaction_set(
            bam_id=bam_id,
            message_id=message_id,
            user=request.user,
            emoji=emoji,
            on=False,
        )
        return Response({"messageId": str(message_id), "reactions": reactions})


class ReadView(APIView):
    """Move the caller's read position in a BAM forward."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(
        request=ReadMarkSerializer,
        responses=ReadResultSerializer,
    )
    def post(self, request, bam_id):
        return Response(
            lifecycle.read_mark(
                bam_id=bam_id,
                user=request.user,
                message_id=request_object(request).get("messageId"),
            )
        )
