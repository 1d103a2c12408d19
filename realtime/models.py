"""Durable realtime records: server processes and users' last known presence.

Live sockets and rooms are not stored here (see ``realtime.roster``)."""

from django.conf import settings
from django.db import models


class ServerProcess(models.Model):
    """One running server process; it beats, and survivors reap silent ones."""

    id = models.CharField(primary_key=True, max_length=64)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["started_at"]
        verbose_name = "server process"
        verbose_name_plural = "server processes"
        # Live sockets are not rows; this right guards their disconnect action.
        permissions = [("disconnect_socket", "Can disconnect live sockets")]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.id[:8]})"


class Presence(models.Model):
    """A user's last recorded presence: the status they chose, when last seen.

    Written behind in batches; the live status comes from the cluster view."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        BUSY = "busy", "Busy"
        OFFLINE = "offline", "Offline"

        @classmethod
        def live(cls) -> tuple[str, ...]:
            """The statuses of a user with a socket (offline is having none)."""
            return tuple(s for s in cls.values if s != cls.OFFLINE)

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="presence",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OFFLINE, db_index=True
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]
        verbose_name_plural = "presence"

    def __str__(self) -> str:
        return f"{self.user}: {self.status}"
