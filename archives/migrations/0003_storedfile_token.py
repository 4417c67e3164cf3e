import uuid

from django.db import migrations, models


def fill_tokens(apps, schema_editor):
    StoredFile = apps.get_model("archives", "StoredFile")
    for stored in StoredFile.objects.only("pk").iterator():
        StoredFile.objects.filter(pk=stored.pk).update(token=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("archives", "0002_preservation_records")]

    operations = [
        # Three steps so existing rows each get their own random token before it is unique.
        migrations.AddField(
            model_name="storedfile",
            name="token",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="storedfile",
            name="token",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
    ]
