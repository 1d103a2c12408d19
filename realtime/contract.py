"""The Socket.IO API as an AsyncAPI 3.0 document.

Every event is listed once here, with the serializer of its payload and of its
ack. The payload shapes are OpenAPI components of ``/api/schema`` (the
``bamchat.openapi`` hook adds the Socket.IO ones), so the two documents share
one schema per shape; this module copies them as JSON Schema.
"""

import copy
import functools
from dataclasses import dataclass

from django.conf import settings

from bamchat.schema_format import json_schema
from messaging import event_serializers as messaging_events
from messaging.serializers import MessageSerializer
from realtime import event_serializers as events
from realtime.event_serializers import CONNECT_ERROR_CODES, ERROR_CODES
from realtime.models import Presence

COMPONENTS = "#/components/schemas/"
STRING_ID = {"type": "string", "description": "An id (a string of digits)."}


def ref(serializer, *, request: bool = False) -> dict:
    """A reference to the component drf-spectacular makes of a serializer."""
    name = serializer.__name__.removesuffix("Serializer")
    return {"$ref": COMPONENTS + name + ("Request" if request else "")}


@dataclass(frozen=True)
class ClientEvent:
    """An event a client emits; the server answers its ack."""

    name: str
    summary: str
    payload: dict
    ack: type


@dataclass(frozen=True)
class ServerEvent:
    """An event the server emits to clients."""

    name: str
    summary: str
    payload: dict


def _id_or(serializer) -> dict:
    return {"oneOf": [STRING_ID, ref(serializer, request=True)]}


CLIENT_EVENTS = (
    ClientEvent(
        "join-bam",
        "Enter a BAM's room (participants only), replaying what came after "
        "`since` (a message id) or `sinceSeq` before the ack.",
        _id_or(events.JoinBamSerializer),
        events.JoinBamAckSerializer,
    ),
    ClientEvent(
        "leave-bam",
        "Leave a BAM's room; the room gets user-left-bam.",
        _id_or(events.BamRefSerializer),
        events.LeaveBamAckSerializer,
    ),
    ClientEvent(
        "send-message",
        "Store a message (content 1..4000 characters after trimming, or "
        "attachments); the room, sender included, gets new-message. The same "
        "tempId again stores nothing and acks the first message.",
        ref(events.SendMessageSerializer, request=True),
        events.MessageAckSerializer,
    ),
    ClientEvent(
        "typing-start",
        "The room (sender excluded) gets typing-status isTyping true; it "
        "expires after 5 s without renewal.",
        _id_or(events.BamRefSerializer),
        events.AckSerializer,
    ),
    ClientEvent(
        "typing-stop",
        "The room (sender excluded) gets typing-status isTyping false.",
        _id_or(events.BamRefSerializer),
        events.AckSerializer,
    ),
    ClientEvent(
        "status-change",
        "Set the user's presence status; presence-update goes out.",
        {
            "oneOf": [
                {"type": "string", "enum": list(Presence.Status.live())},
                ref(events.StatusChoiceSerializer, request=True),
            ]
        },
        events.StatusChangeAckSerializer,
    ),
    ClientEvent(
        "edit-message",
        "Replace a message's text (the sender); the room gets message-updated.",
        ref(events.EditMessageSerializer, request=True),
        events.MessageAckSerializer,
    ),
    ClientEvent(
        "delete-message",
        "Erase a message, keeping a tombstone (the sender or the BAM's owner); "
        "the room gets message-deleted.",
        ref(events.MessageRefSerializer, request=True),
        events.DeleteMessageAckSerializer,
    ),
    ClientEvent(
        "react",
        "Add (on: true, the default) or remove the user's reaction; the room "
        "gets reaction-updated.",
        ref(events.ReactSerializer, request=True),
        events.ReactAckSerializer,
    ),
    ClientEvent(
        "mark-read",
        "Move the user's read position forward; the room and the user's other "
        "sockets get read-receipt.",
        ref(events.MarkReadSerializer, request=True),
        events.MarkReadAckSerializer,
    ),
)

FREE_FORM = {"description": "Whatever staff sent through the REST endpoint."}
SERVER_NOTIFICATION_TYPES = ["new-message", "mention"]

SERVER_EVENTS = (
    ServerEvent(
        "new-message",
        "A message in a joined BAM, or replayed by join-bam.",
        ref(MessageSerializer),
    ),
    ServerEvent(
        "message-updated",
        "A message's text changed.",
        ref(messaging_events.MessageUpdatedSerializer),
    ),
    ServerEvent(
        "message-deleted",
        "A message became a tombstone.",
        ref(messaging_events.MessageDeletedSerializer),
    ),
    ServerEvent(
        "reaction-updated",
        "A reaction went on or off.",
        ref(messaging_events.ReactionUpdatedSerializer),
    ),
    ServerEvent(
        "read-receipt",
        "A participant's read position moved.",
        ref(messaging_events.ReadReceiptSerializer),
    ),
    ServerEvent(
        "user-joined-bam",
        "Someone entered the room.",
        ref(events.MemberEventSerializer),
    ),
    ServerEvent(
        "user-left-bam", "Someone left the room.", ref(events.MemberEventSerializer)
    ),
    ServerEvent(
        "typing-status",
        "Someone started or stopped typing.",
        ref(events.TypingStatusSerializer),
    ),
    ServerEvent(
        "presence-update",
        "A user's status changed: to their own sockets and to everyone who "
        "shares a BAM with them.",
        ref(events.PresenceUpdateSerializer),
    ),
    ServerEvent(
        "notification",
        "A new message or a mention in a BAM whose room this socket is not "
        "in; or what POST /websocket/notify carried (any type but these two).",
        {
            "anyOf": [
                ref(messaging_events.NotificationSerializer),
                {
                    **FREE_FORM,
                    "not": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": SERVER_NOTIFICATION_TYPES}},
                    },
                },
            ]
        },
    ),
    ServerEvent(
        "token-expired",
        "The socket's token expired; the server disconnects it next.",
        ref(events.TokenExpiredSerializer),
    ),
    ServerEvent(
        "connect_error",
        "The handshake was refused (Socket.IO's own event).",
        ref(events.ConnectErrorSerializer),
    ),
    ServerEvent("broadcast", "What POST /websocket/broadcast carried.", FREE_FORM),
    ServerEvent("announcement", "Staff notify or broadcast.", FREE_FORM),
    ServerEvent("system-alert", "Staff notify or broadcast.", FREE_FORM),
)

# Serializers the OpenAPI hook turns into components (responses are closed).
EVENT_SERIALIZERS = (
    MessageSerializer,
    messaging_events.MessageUpdatedSerializer,
    messaging_events.MessageDeletedSerializer,
    messaging_events.ReactionUpdatedSerializer,
    messaging_events.ReadReceiptSerializer,
    messaging_events.NotificationSerializer,
    events.MemberEventSerializer,
    events.TypingStatusSerializer,
    events.PresenceUpdateSerializer,
    events.TokenExpiredSerializer,
    events.ConnectErrorSerializer,
    events.AckErrorSerializer,
    *{event.ack for event in CLIENT_EVENTS},
)
EVENT_REQUEST_SERIALIZERS = (
    events.HandshakeAuthSerializer,
    events.JoinBamSerializer,
    events.BamRefSerializer,
    events.SendMessageSerializer,
    events.EditMessageSerializer,
    events.MessageRefSerializer,
    events.ReactSerializer,
    events.MarkReadSerializer,
    events.StatusChoiceSerializer,
)


def key_of(event_name: str) -> str:
    """``join-bam`` -> ``joinBam``: channel, message and operation keys."""
    head, *rest = event_name.replace("_", "-").split("-")
    return head + "".join(word.title() for word in rest)


def _message(name: str, title: str, summary: str, payload: dict) -> dict:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    }


DESCRIPTION = f"""\
The realtime API of BAM Chat over Socket.IO (protocol v5, Engine.IO v4; \
WebSocket, with HTTP long-polling as fallback), namespace `/`.

Connect with `io(url, {{auth: {{token: "<access JWT>"}}}})` (or the header \
`Authorization: Bearer <jwt>`, or `?token=<jwt>`). A refused handshake's \
`connect_error` carries `data.code`: {", ".join(CONNECT_ERROR_CODES)}.

Every client event takes an optional ack: `{{ok: true, ...}}` or \
`{{ok: false, error: {{code, message}}}}`, code one of \
{", ".join([*ERROR_CODES, "internal"])}. An event name the contract does not \
define is answered `invalid`. Ids are strings; times are ISO 8601 UTC. \
Payload shapes are the components of the REST API's OpenAPI document \
(`/api/schema`).
"""


@functools.cache
def _document_body() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    openapi = SchemaGenerator().get_schema(request=None, public=True)
    schemas = json_schema(openapi["components"]["schemas"])
    channels, operations, messages = {}, {}, {}
    for event in CLIENT_EVENTS:
        key = key_of(event.name)
        messages[key] = _message(event.name, event.name, event.summary, event.payload)
        messages[key + "Ack"] = _message(
            f"{event.name} ack",
            f"ack of {event.name}",
            "The ack's argument: accepted, or refused with a code.",
            {"oneOf": [ref(event.ack), ref(events.AckErrorSerializer)]},
        )
        channels[key] = {
            "address": event.name,
            "title": event.name,
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for name in (key, key + "Ack")
            },
        }
        operations[key] = {
            "action": "receive",
            "title": f"Client emits {event.name}",
            "summary": event.summary,
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/{key}Ack"}],
            },
        }
    for event in SERVER_EVENTS:
        key = key_of(event.name)
        messages[key] = _message(event.name, event.name, event.summary, event.payload)
        channels[key] = {
            "address": event.name,
            "title": event.name,
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[key] = {
            "action": "send",
            "title": f"Server emits {event.name}",
            "summary": event.summary,
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "BAM Chat realtime API",
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "handshakeToken": {
                    "type": "httpApiKey",
                    "in": "query",
                    "name": "token",
                    "description": "The access JWT, as the handshake's "
                    "`auth.token` (see HandshakeAuthRequest), the "
                    "`Authorization: Bearer` header, or the `token` query "
                    "parameter.",
                }
            },
        },
    }


def asyncapi_document(*, host: str, secure: bool) -> dict:
    """The AsyncAPI document, with this server's address."""
    body = copy.deepcopy(_document_body())
    server = {
        "host": host,
        "protocol": "wss" if secure else "ws",
        "pathname": "/socket.io/",
        "description": "This server (Engine.IO path /socket.io/).",
        "security": [{"$ref": "#/components/securitySchemes/handshakeToken"}],
        # The Socket.IO handshake's ``auth`` object (no AsyncAPI binding has one).
        "x-socketio-auth": ref(events.HandshakeAuthSerializer, request=True),
    }
    head = {"asyncapi": body.pop("asyncapi"), "info": body.pop("info")}
    return {**head, "servers": {"bamchat": server}, **body}
