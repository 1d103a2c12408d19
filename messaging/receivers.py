"""Keep ``Bam.audience_version`` true: any change to who hears of a BAM bumps it.

Membership rows created, deleted (cascades included) or saved with a field that
decides the audience bump their BAM's version in the same transaction, so a
message write, which reads the version under the BAM's row lock, never uses a
cached audience from before the change. Bulk writes send no signals: the
services that use them bump the version themselves.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from messaging import statements
from messaging.models import Membership

# Membership fields whose change changes who hears of the BAM's messages.
AUDIENCE_FIELDS = frozenset({"bam", "user", "muted"})


@receiver(post_save, sender=Membership, dispatch_uid="messaging.audience_saved")
def membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields")
    if created or update_fields is None or AUDIENCE_FIELDS & set(update_fields):
        statements.audience_changed(bam_id=instance.bam_id)


@receiver(post_delete, sender=Membership, dispatch_uid="messaging.audience_deleted")
def membership_deleted(sender, instance: Membership, **kwargs) -> None:
    statements.audience_changed(bam_id=instance.bam_id)
