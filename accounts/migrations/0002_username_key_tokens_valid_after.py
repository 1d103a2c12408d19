import unicodedata

from django.db import migrations, models

import accounts.models


def fill_username_keys(apps, schema_editor):
    """Give every existing account its normalised username (accounts.models)."""
    User = apps.get_model("accounts", "User")
    seen = {}
    for user in User.objects.order_by("pk").only("pk", "username"):
        folded = unicodedata.normalize("NFKC", user.username).strip().casefold()
        key = unicodedata.normalize("NFKC", folded)
        if key in seen:
            raise RuntimeError(
                f"Accounts #{seen[key]} and #{user.pk} have usernames that differ "
                "only by case or width; rename one of them, then migrate again."
            )
        seen[key] = user.pk
        User.objects.filter(pk=user.pk).update(username_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("objects", accounts.models.UserManager()),
            ],
        ),
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=600, null=True),
        ),
        migrations.RunPython(fill_username_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=600, unique=True),
        ),
        migrations.AddField(
            model_name="user",
            name="tokens_valid_after",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
