import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0001_initial"),
        ("generation", "0001_initial"),
        ("heritage", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="metric_distribution",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="studyitem",
            name="expected",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="metricresult",
            name="protocol",
            field=models.CharField(
                choices=[("reproduction", "Reproduction"), ("held_out", "held-out")],
                db_index=True,
                default="held_out",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="metricresult",
            name="run",
            field=models.ForeignKey(
                blank=True,
                help_text=(
                    "The run whose request made the image (its base images too); empty: none."
                ),
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="generation.trainingrun",
            ),
        ),
        migrations.CreateModel(
            name="StudyReference",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("added_at", models.DateTimeField(auto_now_add=True)),
                (
                    "added_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "image",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="study_references",
                        to="heritage.itemimage",
                    ),
                ),
                (
                    "study",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="references",
                        to="evaluation.study",
                    ),
                ),
            ],
            options={
                "ordering": ["study_id", "image_id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("study", "image"), name="evaluation_reference_once"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RatingChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "dimension",
                    models.CharField(
                        choices=[
                            ("style_consistency", "Style consistency"),
                            ("image_text_match", "Image-text match"),
                            ("detail_richness", "Detail richness"),
                            ("artistic_beauty", "Artistic beauty"),
                        ],
                        max_length=30,
                    ),
                ),
                ("old_score", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("new_score", models.PositiveSmallIntegerField()),
                ("old_comment", models.TextField(blank=True)),
                ("new_comment", models.TextField(blank=True)),
                ("changed_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "expert",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rating_changes",
                        to="evaluation.studyitem",
                    ),
                ),
                (
                    "study",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rating_changes",
                        to="evaluation.study",
                    ),
                ),
            ],
            options={"ordering": ["study_id", "changed_at", "id"]},
        ),
    ]
