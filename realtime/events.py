"""The one path by which domain events leave a process: the channel layer.

Services queue these functions with ``transaction.on_commit``; each puts one
message on the channel layer, and every server process's ``ChannelLayerManager``
emits it to its own Socket.IO clients. Messages are plain data (the pub/sub
manager's ``emit`` format plus a few methods of our own).
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.selectors import iso

logger = logging.getLogger(__name__)

NAMESPACE = "/"
# Every process listens on this group; BAM rooms have a group each (see bam_room).
GLOBAL_GROUP = "realtime"
LAYER_MESSAGE_TYPE = "realtime.event"


def bam_room(bam_id) -> str:
    """Room (and channel-layer group) of a BAM's joined sockets."""
    return f"bam-{bam_id}"


def user_room(user_id) -> str:
    """Room holding every socket of one user on a process."""
    return f"user-{user_id}"


def is_bam_room(room) -> bool:
    """Whether a room name is a BAM room (and so has its own channel-layer group)."""
    return isinstance(room, str) and room.startswith("bam-")


def emit_message(
    event: str, data, *, room: str, skip_sid=None, host_id: str = ""
) -> dict:
    """A layer message asking every process to emit ``event`` to ``room``."""
    return {
        "type": LAYER_MESSAGE_TYPE,
        "method": "emit",
        "event": event,
        "data": [data],
        "binary": False,
        "namespace": NAMESPACE,
        "room": room,
        "skip_sid": skip_sid,
        "callback": None,
        "host_id": host_id,
    }


def users_message(
    event: str, data, *, user_ids, except_room: str | None = None
) -> dict:
    """A layer message asking every process to emit to the sockets of some users."""
    return {
        "type": LAYER_MESSAGE_TYPE,
        "method": "emit_users",
        "event": event,
        "data": data,
        "user_ids": [str(uid) for uid in user_ids],
        "except_room": except_room,
        "host_id": "",
    }


class _OutageLog:
    """Logs a channel-layer outage once when it starts and once when it ends."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error(
                "Channel layer unreachable; realtime events are being dropped: %s", exc
            )

    def recovered(self) -> None:
        if self.down:
            self.down = False
            logger.warning("Channel layer reachable again; realtime events flow again.")


_publish_outage = _OutageLog()


class Publisher:
    """Sends events queued by sync code from the server's event loop, in order.

    Services announce from the database thread after commit. Waiting there for
    each ``group_send`` would hold that thread (which every realtime handler
    shares) for a loop round trip per event; instead the event is handed to
    the loop and sent by one task, so the order in which events were queued is
    the order in which they leave.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self.task = loop.create_task(self._run(), name="realtime-publisher")

    def submit(self, group: str, message: dict) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    async def _run(self) -> None:
        layer = get_channel_layer()
        while True:
            group, message = await self.queue.get()
            try:
                await layer.group_send(group, message)
            except Exception as exc:
                _publish_outage.failed(exc)
            else:
                _publish_outage.recovered()

    def usable_from_here(self) -> bool:
        if self.task.done() or not self.loop.is_running():
            return False
        try:
            return asyncio.get_running_loop() is not self.loop
        except RuntimeError:
            return True


_publisher: Publisher | None = None


def publisher_start() -> None:
    """Send this process's events from the running loop (called by the server)."""
    global _publisher
    if _publisher is None or _publisher.task.done():
        _publisher = Publisher(asyncio.get_running_loop())


def publish(group: str, message: dict, *, wait: bool = False) -> bool:
    """Put one message on the channel layer from sync code; never raises on outage.

    Inside a server process the message is queued for the loop's publisher and
    True is returned at once; with ``wait`` (or outside a server) it is sent
    before returning and the answer says whether the layer took it. The write
    that caused the event is already committed, so an unreachable layer costs the
    live event, not the data: clients catch up with ``join-bam`` ``since``.
    """
    publisher = _publisher
    if not wait and publisher is not None and publisher.usable_from_here():
        publisher.submit(group, message)
        return True
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception as exc:
        _publish_outage.failed(exc)
        return False
    _publish_outage.recovered()
    return True


def message_created_publish(message) -> None:
    """Announce a stored message: ``new-message`` to its room, ``notification`` to
    participants whose sockets are connected but not in the room."""
    from messaging.selectors import participant_ids
    from messaging.serializers import message_payload

    payload = message_payload(message)
    room = bam_room(message.bam_id)
    publish(room, emit_message("new-message", payload, room=room))
    recipients = [
        uid
        for uid in participant_ids(bam_id=message.bam_id)
        if uid != message.sender_id
    ]
    if recipients:
        preview = (
            message.content
            if len(message.content) <= 100
            else message.content[:97] + "..."
        )
        notification = {
            "type": "new-message",
            "bamId": str(message.bam_id),
            "messageId": str(message.pk),
            "senderId": str(message.sender_id),
            "preview": preview,
        }
        publish(
            GLOBAL_GROUP,
            users_message(
                "notification", notification, user_ids=recipients, except_room=room
            ),
        )


def presence_publish(
    *, user_id: int, status: str, last_seen, audience: list[int]
) -> None:
    """Announce a presence change to the user's sockets and co-participants."""
    payload = {
        "userId": str(user_id),
        "status": status,
        "lastSeen": iso(last_seen),
    }
    publish(GLOBAL_GROUP, users_message("presence-update", payload, user_ids=audience))


def room_event_publish(
    *, bam_id: int, event: str, payload: dict, skip_sid: str | None = None
) -> None:
    """Emit an event to a BAM's room on every process."""
    room = bam_room(bam_id)
    publish(room, emit_message(event, payload, room=room, skip_sid=skip_sid))


def users_event_publish(*, user_ids, event: str, payload) -> bool:
    """Emit an event to every socket of the given users on every process."""
    message = users_message(event, payload, user_ids=user_ids)
    return publish(GLOBAL_GROUP, message, wait=True)


def broadcast_publish(*, event: str, payload) -> bool:
    """Emit an event to every connected socket on every process."""
    return publish(GLOBAL_GROUP, emit_message(event, payload, room=None), wait=True)


def bam_members_removed(*, bam_id: int, user_ids: list[int]) -> None:
    """Make the removed users' sockets leave the BAM's room on every process."""
    publish(
        GLOBAL_GROUP,
        {
            "type": LAYER_MESSAGE_TYPE,
            "method": "bam_evict",
            "room": bam_room(bam_id),
            "user_ids": [str(uid) for uid in user_ids],
            "host_id": "",
        },
    )


def users_disconnect(*, user_ids: list[int]) -> None:
    """Disconnect every socket of the given users on every process."""
    publish(
        GLOBAL_GROUP,
        {
            "type": LAYER_MESSAGE_TYPE,
            "method": "disconnect_users",
            "user_ids": [str(u) for u in user_ids],
            "host_id": "",
        },
    )


def sockets_disconnect(*, sids: list[str]) -> None:
    """Disconnect the given sockets wherever they are."""
    publish(
        GLOBAL_GROUP,
        {
            "type": LAYER_MESSAGE_TYPE,
            "method": "disconnect_sids",
            "sids": list(sids),
            "host_id": "",
        },
    )
