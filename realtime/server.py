"""This process's Socket.IO server: engine settings, sockets' state, lifecycle."""

import asyncio
import logging
from dataclasses import dataclass, field

import socketio
from django.conf import settings

from realtime.manager import ChannelLayerManager
from realtime.process import ProcessLife
from realtime.ratelimit import RateLimiter
from realtime.typing import TypingTracker

logger = logging.getLogger(__name__)


@dataclass
class SocketState:
    """What this process knows about one of its sockets."""

    user_id: int
    username: str
    expires_at: float
    transport: str
    bams: set[int] = field(default_factory=set)  # BAMs whose membership was checked
    expiry_timer: object = None


class BamSocketServer(socketio.AsyncServer):
    """AsyncServer with the layer manager, sockets' state and process lifecycle."""

    def __init__(self) -> None:
        origins = settings.CORS_ALLOWED_ORIGINS or None  # None: same origin only
        super().__init__(
            async_mode="asgi",
            client_manager=ChannelLayerManager(),
            cors_allowed_origins=origins,
            max_http_buffer_size=settings.REALTIME["MAX_PAYLOAD_BYTES"],
            # Events of one socket run in order (per-sender message order); sockets
            # still run concurrently with each other.
            async_handlers=False,
            ping_interval=25,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        self.sockets: dict[str, SocketState] = {}
        self.process = ProcessLife()
        self.process.on_beat = self._on_beat
        self.limiter = RateLimiter()
        self.typing = TypingTracker(self)
        self._background: set[asyncio.Task] = set()

    def background(self, coro) -> asyncio.Task:
        """Run a coroutine as a task this server keeps a reference to until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _on_beat(self) -> None:
        # Group memberships can expire (channels-redis group_expiry) or vanish with
        # a Redis restart: re-assert them on every beat.
        manager = self.manager
        if manager.channel_name is not None:
            try:
                await manager.resubscribe()
            except Exception as exc:
                manager._mark_down(exc)

    async def evicted(self, sid: str, room: str) -> None:
        """A socket's user lost access to a BAM: forget the cached membership."""
        state = self.sockets.get(sid)
        if state is not None:
            try:
                state.bams.discard(int(room.removeprefix("bam-")))
            except ValueError:
                pass

    def health(self) -> dict:
        """Liveness of this process's realtime machinery."""
        manager = self.manager
        return {
            "process": self.process.id,
            "heartbeat": self.process.running,
            "heartbeatError": self.process.last_error,
            "listener": bool(getattr(manager, "listener_running", False)),
            "listenerRestarts": manager.listener_restarts,
            "layerDown": manager.layer_down,
            "sockets": len(self.sockets),
        }


sio = BamSocketServer()

from realtime import handlers  # noqa: E402  - registers the event handlers on ``sio``

handlers.register(sio)
