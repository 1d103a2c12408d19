from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_message_temp_id_unique_per_bam"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="muted",
            field=models.BooleanField(default=False),
        ),
    ]
