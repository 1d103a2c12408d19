"""A new message may owe pushes: after commit, the task queue plans them.

A device subscribing or going away changes who hears of every BAM of its user:
their audience versions are bumped (see ``Bam.audience_version``).
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from messaging import statements
from messaging.models import Message, MessageEvent
from push import services
from push.models import PushDevice, PushSubscription
from push.tasks import push_fanout


@receiver(post_save, sender=Message, dispatch_uid="push.message_saved")
def message_saved(sender, instance: Message, created: bool, **kwargs) -> None:
    """Queue the push plan of a new message once it is committed (always when it
    mentions someone: a mention pushes even in a muted BAM)."""
    if not created or kwargs.get("raw"):
        return
    message_id, bam_id, sender_id = instance.pk, instance.bam_id, instance.sender_id
    version = getattr(instance, "audience_version", None)
    mentions = bool(getattr(instance, "mention_ids", None))

    def plan() -> None:
        if mentions or services.push_wanted(
            bam_id=bam_id, sender_id=sender_id, audience_version=version
        ):
            push_fanout.enqueue(message_id)

    transaction.on_commit(plan)


@receiver(post_save, sender=MessageEvent, dispatch_uid="push.mentioned_by_edit")
def mentioned_by_edit(sender, instance: MessageEvent, created: bool, **kwargs) -> None:
    """Queue the pushes of those an edit mentions for the first time."""
    newly = list(getattr(instance, "newly_mentioned", ()))
    if created and newly and not kwargs.get("raw"):
        message_id = instance.message_id
        transaction.on_commit(lambda: push_fanout.enqueue(message_id, newly))


@receiver(post_save, sender=PushSubscription, dispatch_uid="push.device_saved")
@receiver(post_save, sender=PushDevice, dispatch_uid="push.app_device_saved")
def device_saved(sender, instance, created: bool, **kwargs) -> None:
    if not kwargs.get("raw"):
        statements.audience_changed(user_id=instance.user_id)


@receiver(post_delete, sender=PushSubscription, dispatch_uid="push.device_gone")
@receiver(post_delete, sender=PushDevice, dispatch_uid="push.app_device_gone")
def device_gone(sender, instance, **kwargs) -> None:
    statements.audience_changed(user_id=instance.user_id)
