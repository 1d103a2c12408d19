"""ASGI entry point: the one place where Django, Channels and Socket.IO are composed.

``/socket.io/`` (HTTP long-polling and WebSocket) goes through the realtime gate
to the Socket.IO engine; every other HTTP request goes to Django. The process
starter around it all brings up this process's realtime machinery.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bamchat.settings")

from django.core.asgi import get_asgi_application

# Load Django (apps, models, settings) before anything imports a model.
django_asgi_app = get_asgi_application()

import socketio  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from bamchat.bodylimit import BodySizeLimit, request_body_limit  # noqa: E402
from bamchat.gc_tuning import apply_gc_thresholds  # noqa: E402
from messaging.uploads import MULTIPART_OVERHEAD_BYTES  # noqa: E402
from realtime.asgi import ProcessStarter, SocketGate  # noqa: E402
from realtime.autobahn_logs import cheap_autobahn_debug_text  # noqa: E402
from realtime.server import sio  # noqa: E402

cheap_autobahn_debug_text()  # under daphne, which imported autobahn already
apply_gc_thresholds()  # a server process holds many sockets' objects
socketio_app = SocketGate(socketio.ASGIApp(sio, socketio_path="socket.io"), sio)
# Oversized uploads are refused before Django spools their body to disk.
django_app = BodySizeLimit(
    django_asgi_app,
    path=r"^/bams/[^/]+/attachments/?$",
    limit=lambda scope: settings.ATTACHMENT_MAX_BYTES + MULTIPART_OVERHEAD_BYTES,
)

application = ProcessStarter(
    ProtocolTypeRouter(
        {
            # Every body within the general limits; daphne applies them already
            # while the body arrives (bamchat.daphne_request), other servers here.
            "http": BodySizeLimit(
                URLRouter(
                    [
                        re_path(r"^socket\.io/", socketio_app),
                        re_path(r"", django_app),
                    ]
                ),
                limit=lambda scope: request_body_limit(scope["headers"]),
            ),
            "websocket": URLRouter([re_path(r"^socket\.io/", socketio_app)]),
        }
    ),
    sio,
)
