"""Model changes that realtime clients must hear of, announced after commit.

This is the one event path: a write saves a model, the receiver here queues
the event with ``transaction.on_commit``, and ``realtime.bus`` carries it to
every process. A rollback announces nothing.
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from bamchat.formats import iso
from messaging.models import Membership, Message, MessageEvent
from messaging.serializers import (
    message_event_payload,
    message_preview,
    stored_message_payload,
)
from messaging.statements import participant_ids
from realtime import bus


@receiver(post_save, sender=Message, dispatch_uid="realtime.message_saved")
def message_saved(sender, instance: Message, created: bool, **kwargs) -> None:
    """A new message: ``new-message`` to its room, ``notification`` to the others
    (of type ``mention`` for those it mentions)."""
    if not created or kwargs.get("raw"):
        return
    payload = stored_message_payload(instance)
    bam_id = instance.bam_id
    everyone = participant_ids(
        bam_id=bam_id, audience_version=getattr(instance, "audience_version", None)
    )
    mentioned = set(getattr(instance, "mention_ids", ()))
    recipients = [u for u in everyone if u != instance.sender_id and u not in mentioned]
    notification = {
        "type": "new-message",
        "bamId": str(bam_id),
        "messageId": str(instance.pk),
        "senderId": str(instance.sender_id),
        "preview": message_preview(instance),
    }

    def announce() -> None:
        bus.bam_event(bam_id=bam_id, event="new-message", data=payload)
        if recipients:
            bus.users_event(
                user_ids=recipients,
                event="notification",
                data=notification,
                except_bam=bam_id,
            )
        mentions_announce(instance, user_ids=mentioned)

    transaction.on_commit(announce)


def mention_notification(message: Message) -> dict:
    """The ``notification`` a mentioned participant's sockets get."""
    return {
        "type": "mention",
        "bamId": str(message.bam_id),
        "messageId": str(message.pk),
        "senderId": str(message.sender_id),
    }


def mentions_announce(message: Message, *, user_ids) -> None:
    """``notification`` (mention) to the sockets of these users outside the room
    (in it, ``new-message`` or ``message-updated`` names them)."""
    if user_ids:
        bus.users_event(
            user_ids=sorted(user_ids),
            event="notification",
            data=mention_notification(message),
            except_bam=message.bam_id,
        )


@receiver(post_save, sender=MessageEvent, dispatch_uid="realtime.message_changed")
def message_changed(sender, instance: MessageEvent, created: bool, **kwargs) -> None:
    """An edit, deletion or reaction change: its event to the BAM's room, in seq."""
    if not created or kwargs.get("raw"):
        return
    event, payload = message_event_payload(instance)
    bam_id = instance.bam_id
    message, newly = instance.message, getattr(instance, "newly_mentioned", ())

    def announce() -> None:
        bus.bam_event(bam_id=bam_id, event=event, data=payload)
        mentions_announce(message, user_ids=newly)

    transaction.on_commit(announce)


@receiver(post_save, sender=Membership, dispatch_uid="realtime.read_moved")
def read_moved(sender, instance: Membership, created: bool, **kwargs) -> None:
    """A read position moved: ``read-receipt`` to the room and the reader's
    other sockets."""
    if created or "last_read_seq" not in (kwargs.get("update_fields") or ()):
        return
    bam_id, user_id = instance.bam_id, instance.user_id
    receipt = {
        "bamId": str(bam_id),
        "userId": str(user_id),
        "messageId": str(instance.last_read_message_id),
        "at": iso(timezone.now()),
    }

    def announce() -> None:
        bus.room_event(bam_id=bam_id, event="read-receipt", data=receipt)
        bus.users_event(
            user_ids=[user_id], event="read-receipt", data=receipt, except_bam=bam_id
        )

    transaction.on_commit(announce)


@receiver(post_delete, sender=Membership, dispatch_uid="realtime.membership_gone")
def membership_gone(sender, instance: Membership, **kwargs) -> None:
    """A user left or lost a BAM (or it was deleted): every socket of theirs, on
    every process, leaves its room and forgets that it had access."""
    bam_id, user_id = instance.bam_id, instance.user_id
    transaction.on_commit(
        lambda: bus.bam_access_revoked(bam_id=bam_id, user_ids=[user_id])
    )


@receiver(
    post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="realtime.user_saved"
)
def user_saved(sender, instance, created: bool, **kwargs) -> None:
    """A deactivated account, or one whose tokens were revoked, keeps no socket."""
    if created or kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields") or ()
    if instance.is_active and "tokens_valid_after" not in update_fields:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: bus.users_disconnect(user_ids=[user_id]))


@receiver(
    post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="realtime.user_deleted"
)
def user_deleted(sender, instance, **kwargs) -> None:
    """A deleted account keeps no socket."""
    user_id = instance.pk
    transaction.on_commit(lambda: bus.users_disconnect(user_ids=[user_id]))
