"""Curator admin of the heritage catalogue: inline annotations and image previews."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    TrainingDataset,
    TrainingExample,
    langmap_get,
)


def image_preview(image: ItemImage | None, size: int = 120) -> str:
    if image is None or image.pk is None:
        return "—"
    if not image.thumbnail_id:
        return "derivatives pending"
    return format_html(
        '<img src="/iiif/image/{}/full/{},{}/0/default.jpg" alt=""'
        ' style="max-width:{}px;max-height:{}px">',
        image.pk,
        image.thumbnail_width,
        image.thumbnail_height,
        size,
        size,
    )


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("slug", "english_title", "published", "position")
    list_editable = ("published", "position")
    search_fields = ("slug", "title")
    prepopulated_fields = {}

    @admin.display(description="Title")
    def english_title(self, obj: Collection) -> str:
        return langmap_get(obj.title)


class ItemImageInline(admin.TabularInline):
    model = ItemImage
    extra = 0
    fields = ("preview", "is_primary", "position", "width", "height", "original")
    readonly_fields = ("preview", "width", "height", "original")
    show_change_link = True

    @admin.display(description="Preview")
    def preview(self, obj: ItemImage) -> str:
        return image_preview(obj)

    def has_add_permission(self, request, obj=None) -> bool:
        # Images come in through the upload service (validation, checksums, derivatives).
        return False


@admin.register(HeritageItem)
class HeritageItemAdmin(admin.ModelAdmin):
    list_display = ("accession_number", "english_title", "collection", "period", "published")
    list_filter = ("collection", "published")
    list_select_related = ("collection",)
    search_fields = ("accession_number", "title", "description", "place", "period")
    inlines = [ItemImageInline]

    @admin.display(description="Title")
    def english_title(self, obj: HeritageItem) -> str:
        return langmap_get(obj.title)


class SemioticAnnotationInline(admin.StackedInline):
    model = SemioticAnnotation
    extra = 0
    fields = (
        "category",
        "motifs",
        ("region_x", "region_y", "region_w", "region_h"),
        "meaning",
        "annotator",
        "annotated_on",
    )
    filter_horizontal = ("motifs",)


@admin.register(ItemImage)
class ItemImageAdmin(admin.ModelAdmin):
    list_display = ("id", "preview", "item", "width", "height", "is_primary", "derivatives_ready")
    list_select_related = ("item",)
    search_fields = ("item__accession_number",)
    readonly_fields = (
        "preview_large",
        "original",
        "original_filename",
        "original_format",
        "original_mode",
        "width",
        "height",
        "thumbnail",
        "display",
    )
    inlines = [SemioticAnnotationInline]

    @admin.display(description="Preview")
    def preview(self, obj: ItemImage) -> str:
        return image_preview(obj, 80)

    @admin.display(description="Preview")
    def preview_large(self, obj: ItemImage) -> str:
        if not obj.display_id:
            return image_preview(obj, 300)
        return format_html(
            '<img src="/iiif/image/{}/full/{},{}/0/default.jpg" alt="" style="max-width:600px">',
            obj.pk,
            obj.display_width,
            obj.display_height,
        )


@admin.register(MotifTerm)
class MotifTermAdmin(admin.ModelAdmin):
    list_display = ("slug", "label")
    search_fields = ("slug", "label")


@admin.register(SemioticAnnotation)
class SemioticAnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "image", "category", "annotator", "annotated_on")
    list_filter = ("category", "motifs")
    list_select_related = ("image__item", "annotator")
    filter_horizontal = ("motifs",)


@admin.register(GazetteerPassage)
class GazetteerPassageAdmin(admin.ModelAdmin):
    list_display = ("id", "source_work", "section", "short_text", "published")
    list_filter = ("source_work", "section", "published")
    search_fields = ("original_text", "modern_paraphrase", "english_translation")
    filter_horizontal = ("items",)

    @admin.display(description="Text")
    def short_text(self, obj: GazetteerPassage) -> str:
        return obj.original_text[:30]


class TrainingExampleInline(admin.TabularInline):
    model = TrainingExample
    extra = 0
    fields = ("image", "caption", "split", "category", "crop")
    readonly_fields = ("image", "crop", "category")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.frozen:
            return ("image", "caption", "split", "category", "crop")
        return self.readonly_fields


@admin.register(TrainingDataset)
class TrainingDatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "frozen", "trigger_token", "resolution", "content_hash")
    list_filter = ("frozen",)
    inlines = [TrainingExampleInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.frozen:
            return [f.name for f in self.model._meta.fields]
        return ("frozen", "frozen_at", "content_hash", "parent", "created_by")
