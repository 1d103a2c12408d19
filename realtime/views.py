"""REST views of realtime state and operations."""

from django.contrib.auth import get_user_model
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from bamchat.errors import NotFound
from messaging.permissions import IsActiveUser
from messaging.selectors import bam_get_for_participant, parse_id
from realtime import events, selectors
from realtime.serializers import BroadcastSerializer, NotifySerializer


class IsStaff(permissions.BasePermission):
    """Active staff accounts."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class StatsView(APIView):
    """Connections, users, rooms, processes and message rates across every process."""

    permission_classes = [IsStaff]

    @extend_schema(responses=dict)
    def get(self, request):
        return Response(selectors.stats())


class PresenceView(APIView):
    """One user's presence."""

    permission_classes = [IsActiveUser]

    @extend_schema(responses=dict)
    def get(self, request, user_id):
        pk = parse_id(user_id, what="user")
        if not get_user_model().objects.filter(pk=pk).exists():
            raise NotFound("No such user.")
        return Response({"userId": str(pk), **selectors.presence_get(user_id=pk)})


class BamOnlineView(APIView):
    """Users with a socket in a BAM's room; participants or staff only."""

    permission_classes = [IsActiveUser]

    @extend_schema(responses=dict)
    def get(self, request, bam_id):
        if request.user.is_staff:
            pk = parse_id(bam_id, what="BAM")
            from messaging.models import Bam

            if not Bam.objects.filter(pk=pk).exists():
                raise NotFound("No such BAM.")
        else:
            pk = bam_get_for_participant(bam_id=bam_id, user=request.user).pk
        online = selectors.online_user_ids_in_bam(bam_id=pk)
        return Response({"bamId": str(pk), "onlineUsers": online})


class NotifyView(APIView):
    """Push an event to every socket of one user, on every process."""

    permission_classes = [IsStaff]

    @extend_schema(request=NotifySerializer, responses=dict)
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
        delivered = sockets > 0 and events.users_event_publish(
            user_ids=[pk], event=event, payload=body.validated_data["data"]
        )
        return Response(
            {
                "userId": str(pk),
                "event": event,
                "online": sockets > 0,
                "sockets": sockets,
                "sent": bool(delivered),
            }
        )


class BroadcastView(APIView):
    """Push an event to every connected socket, on every process."""

    permission_classes = [IsStaff]

    @extend_schema(request=BroadcastSerializer, responses=dict)
    def post(self, request):
        body = BroadcastSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = body.validated_data["event"]
        sent = events.broadcast_publish(
            event=event, payload=body.validated_data["data"]
        )
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
    """Liveness of this process: database, channel layer listener, heartbeat."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(responses=dict)
    def get(self, request):
        from realtime.server import sio

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            database = True
        except Exception:
            database = False
        body = {"database": database, **sio.health()}
        healthy = (
            database
            and not body["layerDown"]
            and (body["listener"] or body["sockets"] == 0)
        )
        body["ok"] = healthy
        return Response(body, status=200 if healthy else 503)
