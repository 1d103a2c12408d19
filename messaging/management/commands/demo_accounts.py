"""Create (or reset) two demo accounts and a BAM between them; print how to log in."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from messaging.models import Bam
from messaging.services import bam_create

DEMO_PASSWORD = "bamchat-demo"
DEMO_USERS = ("demo", "demo2")


class Command(BaseCommand):
    help = "Create demo accounts demo (staff) and demo2 for local use; debug only."

    @transaction.atomic
    def handle(self, *args, **options):
        from django.conf import settings

        if not settings.DEBUG:
            raise CommandError(
                "demo_accounts only runs with DJANGO_DEBUG=1: it sets a known password."
            )
        User = get_user_model()
        users = []
        for name in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=name)
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = name == "demo"
            user.save()
            users.append(user)
        if not Bam.objects.filter(title="Demo BAM", owner=users[0]).exists():
            bam_create(owner=users[0], title="Demo BAM", participant_ids=[users[1].pk])
        self.stdout.write(
            "Demo accounts (password for both: "
            f"{DEMO_PASSWORD}): 'demo' (staff, admin at /admin/) and 'demo2', "
            "who share the BAM 'Demo BAM'.\n"
            "  Token:  curl -s -X POST http://127.0.0.1:8000/auth/token "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"username": "demo", "password": "{DEMO_PASSWORD}"}}\'\n'
            "  API docs: http://127.0.0.1:8000/api/docs"
        )
