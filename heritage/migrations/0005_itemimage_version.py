from django.db import migrations, models


class Migration(migrations.Migration):
    """The edit counter behind ETag / If-Match and the admin's stale-save check."""

    dependencies = [("heritage", "0004_heritageitem_version")]

    operations = [
        migrations.AddField(
            model_name="itemimage",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False),
        ),
    ]
