"""REST views of realtime state and operations, answered for the whole cluster."""

from django.contrib.auth import get_user_model
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveUser, IsStaff
from accounts.views import MeView as ProfileView
from bamchat.errors import NotFound
from messaging.selectors import (
    bam_get_for_participant,
    bam_get_for_staff,
    parse_id,
    shares_a_bam,
)
from realtime import bus, selectors
from realtime.serializers import (
    BamOnlineSerializer,
    BroadcastResultSerializer,
    BroadcastSerializer,
    HealthSerializer,
    MeSerializer,
    NotifyResultSerializer,
    NotifySerializer,
    StatsSerializer,
    UserPresenceSerializer,
)


class MeView(ProfileView):
    """The caller's own profile and presence."""

    serializer_class = MeSerializer


class StatsView(APIView):
    """Connections, users, rooms, processes and message rates across every process."""

    permission_classes = [IsStaff]

    @extend_schema(responses=StatsSerializer)
    def get(self, request):
        return Response(selectors.stats())


class PresenceView(APIView):
    """One user's presence: for the user, co-participants and staff."""

    permission_classes = [IsActiveUser]

    @extend_schema(responses=UserPresenceSerializer)
    def get(self, request, user_id):
        pk = parse_id(user_id, what="user")
        viewer = request.user
        allowed = (
            pk == viewer.pk
            or viewer.is_staff
            or shares_a_bam(user_id=viewer.pk, other_id=pk)
        )
        if not allowed or not get_user_model().objects.filter(pk=pk).exists():
            raise NotFound("No such user.")
        return Response({"userId": str(pk), **selectors.presence_get(user_id=pk)})


class BamOnlineView(APIView):
    """Users with a socket in a BAM's room; participants or staff only."""

    permission_classes = [IsActiveUser]

    @extend_schema(responses=BamOnlineSerializer)
    def get(self, request, bam_id):
        if request.user.is_staff:
            pk = bam_get_for_staff(bam_id=bam_id).pk
        else:
            pk = bam_get_for_participant(bam_id=bam_id, user=request.user).pk
        online = selectors.online_user_ids_in_bam(bam_id=pk)
        return Response({"bamId": str(pk), "onlineUsers": online})


class NotifyView(APIView):
    """Push an event to every socket of one user, on every process."""

    permission_classes = [IsStaff]

    @extend_schema(request=NotifySerializer, responses=NotifyResultSerializer)
    def post(self, request):
        body = NotifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            pk = parse_id(body.validated_data["userId"], what="user")
        except NotFound:
            pk = None
        if pk is None or not get_user_model().objects.filter(pk=pk).exists():
            return Response({"userId": ["No such user."]}, status=400)
        sockets = selectors.user_socket_count(user_id=pk)
        event = body.validated_data["event"]
        sent = sockets > 0 and bus.users_event(
            user_ids=[pk], event=event, data=body.validated_data["data"], confirm=True
        )
        return Response(
            {
                "userId": str(pk),
                "event": event,
                "online": sockets > 0,
                "sockets": sockets,
                "sent": bool(sent),
            }
        )


class BroadcastView(APIView):
    """Push an event to every connected socket, on every process."""

    permission_classes = [IsStaff]

    @extend_schema(request=BroadcastSerializer, responses=BroadcastResultSerializer)
    def post(self, request):
        body = BroadcastSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = body.validated_data["event"]
        sent = bus.broadcast(event=event, data=body.validated_data["data"])
        stats = selectors.stats()
        return Response(
            {
                "event": event,
                "sent": bool(sent),
                "connections": stats["connections"],
                "connectedUsers": stats["connectedUsers"],
            }
        )


class HealthView(APIView):
    """Liveness of this process; the details only for staff."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        from realtime.server import sio

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            database = True
        except Exception:
            database = False
        details = {"database": database, **sio.health()}
        healthy = (
            not sio.process.draining
            and database
            and not details["layerDown"]
            and (details["listener"] or details["sockets"] == 0)
        )
        user = request.user
        body = {"ok": healthy}
        if user and user.is_authenticated and user.is_active and user.is_staff:
            body.update(details)
        return Response(body, status=200 if healthy else 503)
