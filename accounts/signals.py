"""Drop a user's live sockets when the account is deactivated or deleted."""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver


@receiver(
    post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.deactivated"
)
def user_deactivated(sender, instance, created: bool, **kwargs) -> None:
    """An inactive account keeps no socket: disconnect them after commit."""
    if created or instance.is_active or kwargs.get("raw"):
        return
    from realtime.events import users_disconnect

    transaction.on_commit(lambda: users_disconnect(user_ids=[instance.pk]))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.deleted")
def user_deleted(sender, instance, **kwargs) -> None:
    """A deleted account keeps no socket: disconnect them after commit."""
    from realtime.events import users_disconnect

    user_id = instance.pk
    transaction.on_commit(lambda: users_disconnect(user_ids=[user_id]))
