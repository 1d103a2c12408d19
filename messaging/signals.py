"""Announce a stored message once, after its transaction commits."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from messaging.models import Message


@receiver(post_save, sender=Message, dispatch_uid="messaging.message_created")
def message_created(sender, instance: Message, created: bool, **kwargs) -> None:
    """Queue ``new-message`` for after commit; a rollback announces nothing."""
    if not created or kwargs.get("raw"):
        return
    from realtime.events import message_created_publish

    transaction.on_commit(lambda: message_created_publish(instance))
