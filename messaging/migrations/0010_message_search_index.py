from django.conf import settings
from django.db import migrations

from messaging import search_index


def create(apps, schema_editor):
    search_index.index_create(
        schema_editor.connection, config=settings.SEARCH["CONFIG"]
    )


def drop(apps, schema_editor):
    search_index.index_drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0009_mention")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
