"""Delete uploads that were never attached to a message (run it periodically)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from messaging.attachments import UNUSED_UPLOAD_TTL, attachments_cleanup


class Command(BaseCommand):
    help = "Delete unattached uploads older than 24 h (files and rows)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=float,
            default=UNUSED_UPLOAD_TTL.total_seconds() / 3600,
            help="Age in hours past which an unattached upload goes (default 24).",
        )

    def handle(self, *args, **options):
        removed = attachments_cleanup(older_than=timedelta(hours=options["hours"]))
        self.stdout.write(f"Removed {removed} unattached upload(s).")
