"""A new message may owe pushes: after commit, the task queue plans them."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from messaging.models import Message
from push import services
from push.tasks import push_fanout


@receiver(post_save, sender=Message, dispatch_uid="push.message_saved")
def message_saved(sender, instance: Message, created: bool, **kwargs) -> None:
    """Queue the push plan of a new message once it is committed."""
    if not created or kwargs.get("raw"):
        return
    message_id, bam_id, sender_id = instance.pk, instance.bam_id, instance.sender_id

    def plan() -> None:
        if services.push_wanted(bam_id=bam_id, sender_id=sender_id):
            push_fanout.enqueue(message_id)

    transaction.on_commit(plan)
