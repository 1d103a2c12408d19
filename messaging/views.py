"""REST views for BAMs, participants and messages: thin wrappers around services."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from accounts.permissions import IsActiveUser
from bamchat.errors import Invalid
from messaging import selectors, services
from messaging.cleaning import message_text_of
from messaging.pagination import MessageHistoryPagination
from messaging.serializers import (
    BamCreateSerializer,
    BamDetailSerializer,
    BamListItemSerializer,
    BamSerializer,
    BamUpdateSerializer,
    MembershipSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    ParticipantAddSerializer,
    message_payload,
    stored_message_payload,
)


def request_object(request) -> dict:
    """A request's body as a dict of raw values: the services validate them, so
    REST and Socket.IO follow one rule (the serializers only document the shape)."""
    data = request.data
    if hasattr(data, "dict"):  # a form or multipart body
        return data.dict()
    if not isinstance(data, dict):
        raise Invalid("Expected a JSON object.")
    return data


class BamViewSet(viewsets.GenericViewSet):
    """BAMs the caller takes part in; outsiders get 404."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"
    serializer_class = BamSerializer
    pagination_class = PageNumberPagination
    # Any id reaches the view, which answers 404 in JSON (the router's default
    # stops at a dot and leaves Django's HTML 404).
    lookup_value_regex = "[^/]+"

    def _read(self, bam) -> dict:
        bam = selectors.bam_with_participants(bam_id=bam.pk)
        return {
            **BamSerializer(bam).data,
            "readPositions": selectors.read_positions(bam_id=bam.pk),
        }

    def get_queryset(self):
        return selectors.bam_list_for_user(user=self.request.user).prefetch_related(
            "memberships__user"
        )

    @extend_schema(responses=BamListItemSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        last = selectors.messages_by_id(
            bam.last_message_id for bam in page if bam.last_message_id
        )
        items = []
        for bam, data in zip(page, BamSerializer(page, many=True).data, strict=True):
            message = last.get(bam.last_message_id)
            read = bam.read_message_id
            items.append(
                {
                    **data,
                    "unreadCount": bam.unread_count,
                    "unreadMentions": bam.unread_mentions,
                    "lastReadMessageId": None if read is None else str(read),
                    "lastMessage": message_payload(message) if message else None,
                }
            )
        return self.get_paginated_response(items)

    @extend_schema(request=BamCreateSerializer, responses={201: BamDetailSerializer})
    def create(self, request):
        body = request_object(request)
        bam = services.bam_create(
            owner=request.user,
            title=body.get("title"),
            participant_ids=body.get("participantIds"),
        )
        return Response(self._read(bam), status=status.HTTP_201_CREATED)

    @extend_schema(responses=BamDetailSerializer)
    def retrieve(self, request, pk=None):
        bam = selectors.bam_get_for_participant(bam_id=pk, user=request.user)
        return Response(self._read(bam))

    @extend_schema(request=BamUpdateSerializer, responses=BamDetailSerializer)
    def partial_update(self, request, pk=None):
        bam = services.bam_rename(
            bam_id=pk, user=request.user, title=request_object(request).get("title")
        )
        return Response(self._read(bam))

    @extend_schema(request=BamUpdateSerializer, responses=BamDetailSerializer)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.bam_delete(bam_id=pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ParticipantListView(GenericAPIView):
    """Add participants to a BAM (owner only)."""

    permission_classes = [IsActiveUser]
    serializer_class = ParticipantAddSerializer
    pagination_class = None
    throttle_scope = "rest_write"

    @extend_schema(
        request=ParticipantAddSerializer,
        responses={201: MembershipSerializer(many=True)},
    )
    def post(self, request, bam_id):
        body = ParticipantAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.participant_add(
            bam_id=bam_id,
            user=request.user,
            new_user_ids=body.validated_data["userIds"],
        )
        bam = selectors.bam_with_participants(bam_id=bam_id)
        return Response(
            MembershipSerializer(bam.memberships.all(), many=True).data,
            status=status.HTTP_201_CREATED,
        )


class ParticipantDetailView(GenericAPIView):
    """Remove a participant (owner), or leave a BAM (self)."""

    permission_classes = [IsActiveUser]
    throttle_scope = "rest_write"

    @extend_schema(responses={204: None})
    def delete(self, request, bam_id, user_id):
        services.participant_remove(
            bam_id=bam_id, user=request.user, removed_user_id=user_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListView(GenericAPIView):
    """History of a BAM (newest first, cursor-paginated) and posting to it."""

    permission_classes = [IsActiveUser]
    serializer_class = MessageSerializer
    pagination_class = MessageHistoryPagination
    throttle_scope = "rest_write"

    def get_queryset(self):
        # Also what the browsable API asks for when it renders this view.
        bam = selectors.bam_get_for_participant(
            bam_id=self.kwargs["bam_id"], user=self.request.user
        )
        after = self.request.query_params.get("after")
        if after:
            return selectors.messages_after(bam=bam, after_message_id=after)
        return selectors.message_list(bam=bam)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after",
                OpenApiTypes.STR,
                description="Only messages after this message id, oldest first.",
            ),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description="Page size (max 200)."
            ),
        ],
        responses=MessageSerializer(many=True),
    )
    def get(self, request, bam_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        request=MessageCreateSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer},
    )
    def post(self, request, bam_id):
        body = request_object(request)
        message = services.message_create(
            bam_id=bam_id,
            sender=request.user,
            content=message_text_of(body),
            type=body.get("type"),
            temp_id=body.get("tempId"),
            to_user_id=body.get("toUserId"),
            attachment_ids=body.get("attachmentIds"),
            reply_to_id=body.get("replyToId"),
        )
        code = status.HTTP_201_CREATED if message.created else status.HTTP_200_OK
        return Response(stored_message_payload(message), status=code)
