# Live sockets and rooms moved to process memory and the cluster view.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0002_server_process_plural"),
    ]

    operations = [
        migrations.DeleteModel(name="RoomMember"),
        migrations.DeleteModel(name="Connection"),
    ]
