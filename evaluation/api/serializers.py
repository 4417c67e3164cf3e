"""Serializers of the evaluation API. What experts get never names a model or a condition."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from evaluation.models import Dimension, Panel, Study


class StudySerializer(serializers.ModelSerializer):
    """What an expert sees of a study: never the curator's title (it may name the models)."""

    label = serializers.CharField(source="expert_label", read_only=True)
    assigned = serializers.SerializerMethodField()
    rated = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = ["id", "label", "instructions", "status", "assigned", "rated"]

    def _progress(self, study):
        from evaluation.selectors import expert_progress

        cache = self.context.setdefault("_progress", {})
        if study.pk not in cache:
            cache[study.pk] = expert_progress(study, self.context["request"].user)
        return cache[study.pk]

    def get_assigned(self, study) -> int:
        return self._progress(study)[1]

    def get_rated(self, study) -> int:
        return self._progress(study)[0]


class CuratorStudySerializer(StudySerializer):
    class Meta(StudySerializer.Meta):
        fields = [
            *StudySerializer.Meta.fields,
            "title",
            "description",
            "panel",
            "assignment_mode",
            "raters_per_item",
            "reference_condition",
            "created_at",
            "closed_at",
        ]


class ExpertItemSerializer(serializers.Serializer):
    """One of an expert's items: position, opaque image URL, prompt and passage, own ratings."""

    position = serializers.IntegerField()
    token = serializers.CharField()
    image_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    prompt = serializers.CharField()
    passage = serializers.DictField(allow_null=True)
    my_ratings = serializers.DictField()

    @staticmethod
    def build(assignment, own: dict) -> dict:
        item = assignment.item
        passage = item.passage
        return {
            "position": assignment.position,
            "token": item.token,
            "image_url": reverse("evaluation:image", args=[item.token]),
            "width": item.width,
            "height": item.height,
            "prompt": item.prompt,
            "passage": (
                {
                    "source_work": passage.source_work,
                    "section": passage.section,
                    "original_text": passage.original_text,
                    "english_translation": passage.english_translation,
                }
                if passage
                else None
            ),
            "my_ratings": {dim: {"score": r.score, "comment": r.comment} for dim, r in own.items()},
        }


class RatingSubmitSerializer(serializers.Serializer):
    scores = serializers.DictField(child=serializers.IntegerField(min_value=1, max_value=5))
    comments = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=2000), required=False
    )

    def validate(self, data):
        known = set(Dimension.values)
        unknown = (set(data["scores"]) | set(data.get("comments", {}))) - known
        if unknown:
            raise serializers.ValidationError(
                f"unknown dimension(s) {sorted(unknown)}; use {sorted(known)}"
            )
        if not data["scores"]:
            raise serializers.ValidationError("give at least one score")
        return data


class StudyCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    panel = serializers.PrimaryKeyRelatedField(queryset=Panel.objects.all())
    generated_image_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1)
    reference_image_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list
    )
    assignment_mode = serializers.ChoiceField(
        choices=Study.AssignmentMode.choices, default=Study.AssignmentMode.ALL
    )
    raters_per_item = serializers.IntegerField(min_value=3, default=3)
    reference_condition = serializers.CharField(max_length=50, default="base")
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)


class StudyReferencesSerializer(serializers.Serializer):
    image_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=True)


class PanelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Panel
        fields = ["id", "name", "description", "members", "created_at"]
