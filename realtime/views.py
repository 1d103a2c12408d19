"""REST views of realtime state and operations."""

from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView


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
        healthy = database and not body["layerDown"] and (body["listener"] or body["sockets"] == 0)
        body["ok"] = healthy
        return Response(body, status=200 if healthy else 503)
