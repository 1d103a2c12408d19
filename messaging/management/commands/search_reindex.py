"""Rebuild the message search index, with the current SEARCH_CONFIG."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from messaging.search_index import index_refresh


class Command(BaseCommand):
    help = "Rebuild the full-text index of messages (after changing SEARCH_CONFIG)."

    def handle(self, *args, **options):
        with transaction.atomic():
            index_refresh(connection, config=settings.SEARCH["CONFIG"])
        self.stdout.write(f"Search index rebuilt ({settings.SEARCH['CONFIG']}).")
