"""Background jobs of the messaging app, on the project's task queue."""

from bamchat.tasks import periodic, task
from messaging.attachments import attachments_cleanup

# Uploads are checked for staleness this often (seconds); they live 24 h unused.
CLEANUP_EVERY_S = 3600


@periodic(every_s=CLEANUP_EVERY_S)
@task()
def attachments_cleanup_task() -> int:
    """Delete uploads never attached to a message within a day, files included; safe
    to run again (each upload goes in a transaction of its own)."""
    return attachments_cleanup()
