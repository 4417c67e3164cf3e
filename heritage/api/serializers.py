"""Serializers of the public catalogue API (reads shaped for exhibit developers)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from heritage import selectors
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    TrainingDataset,
    TrainingExample,
    validate_langmap,
)


@extend_schema_field(
    {
        "type": "object",
        "description": 'Language map, e.g. {"en": "…", "zh": "…", "ug": "…"}',
        "additionalProperties": {"type": "string"},
        "example": {"en": "Atlas silk", "zh": "艾德莱斯绸"},
    }
)
class LangMapField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            validate_langmap(value)
        except Exception as exc:
            raise serializers.ValidationError(getattr(exc, "messages", [str(exc)])) from None
        return value


def iiif_image_url(image: ItemImage, width: int | None, height: int | None) -> str | None:
    if not width or not height:
        return None
    return f"/iiif/image/{image.pk}/full/{width},{height}/0/default.jpg"


class RegionSerializer(serializers.Serializer):
    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    w = serializers.IntegerField(min_value=1)
    h = serializers.IntegerField(min_value=1)


class MotifTermSerializer(serializers.ModelSerializer):
    label = LangMapField(required=False)

    class Meta:
        model = MotifTerm
        fields = ["slug", "label"]


class AnnotationSerializer(serializers.ModelSerializer):
    motifs = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=MotifTerm.objects.all(), required=False
    )
    region = serializers.SerializerMethodField()
    meaning = LangMapField(required=False)
    item = serializers.SerializerMethodField()

    class Meta:
        model = SemioticAnnotation
        fields = [
            "id",
            "image",
            "item",
            "category",
            "motifs",
            "region",
            "meaning",
            "annotated_on",
        ]
        read_only_fields = ["annotated_on"]

    @extend_schema_field(RegionSerializer(allow_null=True))
    def get_region(self, obj: SemioticAnnotation):
        region = obj.region
        return None if region is None else dict(zip("xywh", region, strict=True))

    @extend_schema_field(OpenApiTypes.INT)
    def get_item(self, obj: SemioticAnnotation) -> int:
        return obj.image.item_id


class AnnotationWriteSerializer(serializers.Serializer):
    image = serializers.PrimaryKeyRelatedField(queryset=ItemImage.objects.all())
    category = serializers.ChoiceField(choices=SemioticAnnotation.Category.choices)
    motifs = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=MotifTerm.objects.all(), required=False
    )
    region = RegionSerializer(required=False, allow_null=True)
    meaning = LangMapField(required=False)


class ImageBriefSerializer(serializers.ModelSerializer):
    """An image inside an item: sizes and IIIF addresses, with its annotations."""

    thumbnail_url = serializers.SerializerMethodField()
    display_url = serializers.SerializerMethodField()
    iiif_info = serializers.SerializerMethodField()
    annotations = AnnotationSerializer(many=True, read_only=True)

    class Meta:
        model = ItemImage
        fields = [
            "id",
            "width",
            "height",
            "is_primary",
            "thumbnail_url",
            "display_url",
            "iiif_info",
            "annotations",
        ]

    def get_thumbnail_url(self, obj: ItemImage) -> str | None:
        return iiif_image_url(obj, obj.thumbnail_width, obj.thumbnail_height)

    def get_display_url(self, obj: ItemImage) -> str | None:
        return iiif_image_url(obj, obj.display_width, obj.display_height)

    def get_iiif_info(self, obj: ItemImage) -> str:
        return f"/iiif/image/{obj.pk}/info.json"


class ImageSerializer(ImageBriefSerializer):
    item = serializers.SlugRelatedField(slug_field="accession_number", read_only=True)
    original = serializers.SerializerMethodField()
    caption = LangMapField(required=False)

    class Meta(ImageBriefSerializer.Meta):
        fields = [
            "id",
            "item",
            *ImageBriefSerializer.Meta.fields[1:],
            "caption",
            "original",
            "derivatives_ready",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "filename": {"type": "string"},
                "url": {
                    "type": "string",
                    "description": "Download (/files/<token>): anyone where the item is "
                    "published and its rights allow, otherwise curators; 404 for others.",
                },
                "sha256": {"type": "string"},
                "size": {"type": "integer"},
                "content_type": {"type": "string"},
                "format": {"type": "string"},
                "mode": {"type": "string"},
            },
        }
    )
    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_original(self, obj: ItemImage) -> dict:
        return {
            "filename": obj.original_filename,
            "url": self._absolute(obj.original.url),
            "sha256": obj.original.sha256,
            "size": obj.original.size,
            "content_type": obj.original.content_type,
            "format": obj.original_format,
            "mode": obj.original_mode,
        }


class ImageUploadSerializer(serializers.Serializer):
    item = serializers.SlugRelatedField(
        slug_field="accession_number", queryset=HeritageItem.objects.all()
    )
    file = serializers.FileField(allow_empty_file=True)
    is_primary = serializers.BooleanField(default=False)
    caption = LangMapField(required=False)


class CollectionSerializer(serializers.ModelSerializer):
    title = LangMapField()
    description = LangMapField(required=False)
    iiif_collection = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = ["id", "slug", "title", "description", "published", "position", "iiif_collection"]

    def get_iiif_collection(self, obj: Collection) -> str:
        return f"/iiif/collections/{obj.slug}"


class ItemSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="slug", queryset=Collection.objects.all())
    title = LangMapField()
    description = LangMapField(required=False)
    credit_line = LangMapField(required=False)
    images = ImageBriefSerializer(many=True, read_only=True)
    iiif_manifest = serializers.SerializerMethodField()

    class Meta:
        model = HeritageItem
        fields = [
            "id",
            "accession_number",
            "collection",
            "title",
            "description",
            "period",
            "place",
            "provenance",
            "rights",
            "credit_line",
            "published",
            "images",
            "iiif_manifest",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def get_iiif_manifest(self, obj: HeritageItem) -> str:
        return f"/iiif/items/{obj.pk}/manifest"


class ImageInListSerializer(ImageBriefSerializer):
    class Meta(ImageBriefSerializer.Meta):
        fields = [f for f in ImageBriefSerializer.Meta.fields if f != "annotations"]


class ItemListSerializer(ItemSerializer):
    """Items in lists: images without their annotations (those are in the item detail and at
    /api/v1/annotations/?item=...), which keeps pages small and fast."""

    images = ImageInListSerializer(many=True, read_only=True)


class PassageSerializer(serializers.ModelSerializer):
    items = serializers.SlugRelatedField(
        slug_field="accession_number",
        many=True,
        queryset=HeritageItem.objects.all(),
        required=False,
    )

    class Meta:
        model = GazetteerPassage
        fields = [
            "id",
            "source_work",
            "section",
            "original_text",
            "modern_paraphrase",
            "english_translation",
            "translations",
            "prompt_draft",
            "approved_prompt",
            "items",
            "published",
        ]


class ExampleSerializer(serializers.ModelSerializer):
    item = serializers.SerializerMethodField()
    crop_sha256 = serializers.SerializerMethodField()

    class Meta:
        model = TrainingExample
        fields = [
            "id",
            "image",
            "item",
            "caption",
            "split",
            "category",
            "kind",
            "box",
            "bucket",
            "crop_box",
            "crop_sha256",
        ]
        read_only_fields = ["image", "category", "kind", "box", "bucket", "crop_box"]

    def get_item(self, obj: TrainingExample) -> str:
        return obj.image.item.accession_number

    def get_crop_sha256(self, obj: TrainingExample) -> str | None:
        return obj.crop.sha256 if obj.crop_id else None


class DatasetSerializer(serializers.ModelSerializer):
    examples_url = serializers.SerializerMethodField()
    train_count = serializers.IntegerField(read_only=True)
    validation_count = serializers.IntegerField(read_only=True)
    state = serializers.ChoiceField(
        choices=["draft", "freezing", "frozen"],
        read_only=True,
        help_text="freezing: its freeze job (freeze_job) is queued or running.",
    )
    freeze_job = serializers.UUIDField(source="freeze_job_id", read_only=True, allow_null=True)

    class Meta:
        model = TrainingDataset
        fields = [
            "id",
            "name",
            "version",
            "description",
            "frozen",
            "frozen_at",
            "state",
            "freeze_job",
            "trigger_token",
            "resolution",
            "validation_fraction",
            "seed",
            "caption_template",
            "bucketing",
            "region_examples",
            "region_margin",
            "tiles_per_image",
            "tile_grid",
            "masked_loss",
            "unmasked_weight",
            "build_notes",
            "selection",
            "content_hash",
            "parent",
            "train_count",
            "validation_count",
            "examples_url",
            "created_at",
        ]
        read_only_fields = fields

    def get_examples_url(self, obj: TrainingDataset) -> str:
        return f"/api/v1/datasets/{obj.pk}/examples/"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        # A frozen dataset is public; the accession numbers it was chosen by may not be.
        user = getattr(request, "user", None)
        data["selection"] = selectors.dataset_selection_for(data["selection"], user=user)
        # The notes name the images the build left out, unpublished ones among them.
        if not selectors.user_is_curator(user):
            data["build_notes"] = []
        return data


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    trigger_token = serializers.CharField(max_length=50, default="[U]")
    resolution = serializers.IntegerField(default=512)
    collections = serializers.ListField(child=serializers.SlugField(), required=False)
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=SemioticAnnotation.Category.choices),
        required=False,
    )
    motifs = serializers.ListField(child=serializers.SlugField(), required=False)
    items = serializers.ListField(child=serializers.CharField(), required=False)
    validation_fraction = serializers.FloatField(default=0.1)
    seed = serializers.IntegerField(default=0)
    caption_template = serializers.CharField(
        max_length=300,
        default="{trigger}, {caption}, {motifs}",
        help_text="Whole-image captions: {trigger}, {caption} (image caption, else item "
        "description, else title), {title}, {motifs}, {categories}.",
    )
    include_unpublished = serializers.BooleanField(
        default=False, help_text="Keep images of unpublished items or collections."
    )
    include_uncaptioned = serializers.BooleanField(
        default=False, help_text="Keep images whose caption would be the trigger alone."
    )
    # Build options (issue 20); the service checks their ranges.
    bucketing = serializers.BooleanField(
        default=True, help_text="Crop each image at its aspect-ratio bucket, not a square."
    )
    region_examples = serializers.BooleanField(
        default=False, help_text="One more example per annotated region, captioned from it."
    )
    region_margin = serializers.FloatField(
        default=0.1, help_text="Margin around a region, as a fraction of its size per side."
    )
    tiles_per_image = serializers.IntegerField(
        default=0,
        help_text="Crops of resolution px at the original scale from images at least twice "
        "the resolution on both sides (textiles); 0: none.",
    )
    tile_grid = serializers.BooleanField(default=False, help_text="Tiles on a grid, not seeded.")
    masked_loss = serializers.BooleanField(
        default=False, help_text="Weigh the loss of annotated regions 1, the rest unmasked_weight."
    )
    unmasked_weight = serializers.FloatField(default=0.1)


class RecaptionSerializer(serializers.Serializer):
    caption_template = serializers.CharField(max_length=300)


class ImportSerializer(serializers.Serializer):
    sheet = serializers.FileField(help_text="CSV (with header) or JSON sheet of rows.")
    images = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Image files named in the sheet."
    )


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    images_added = serializers.IntegerField()
    annotations_added = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
