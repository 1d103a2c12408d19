"""Realtime state every server process can see: processes, sockets, rooms, presence."""

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

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.id[:8]})"


class Connection(models.Model):
    """One live Socket.IO connection (one socket of one user on one process)."""

    class Transport(models.TextChoices):
        WEBSOCKET = "websocket", "WebSocket"
        POLLING = "polling", "HTTP long-polling"

    sid = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connections"
    )
    process = models.ForeignKey(
        ServerProcess, on_delete=models.CASCADE, related_name="connections"
    )
    transport = models.CharField(max_length=16, choices=Transport.choices)
    client_address = models.CharField(max_length=64, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-connected_at"]
        indexes = [models.Index(fields=["user"])]

    def __str__(self) -> str:
        return f"{self.user} via {self.transport} ({self.sid})"


class RoomMember(models.Model):
    """A connection in a BAM's room: the shared answer to "who is online"."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="rooms"
    )
    bam = models.ForeignKey(
        "messaging.Bam", on_delete=models.CASCADE, related_name="room_members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "bam"], name="roommember_unique"
            )
        ]
        indexes = [models.Index(fields=["bam", "user"])]

    def __str__(self) -> str:
        return f"{self.connection_id} in bam-{self.bam_id}"


class Presence(models.Model):
    """A user's presence: offline without sockets, otherwise the status they chose."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        BUSY = "busy", "Busy"
        OFFLINE = "offline", "Offline"

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
