"""Curator admin of the heritage catalogue: inline annotations and image previews."""

from __future__ import annotations

from django import forms
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


class VersionedForm(forms.ModelForm):
    """Posts back the version the curator opened; a save from an older copy is refused.

    The check runs under a row lock (the admin wraps the whole change view in a transaction),
    and the saved row gets the next version, as the services' writes do.
    """

    # Not named "version": the admin may not list a non-editable model field in a form.
    opened_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    check_version = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["opened_version"] = self.instance.version
        if not self.check_version:
            del self.fields["opened_version"]

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if instance.pk is None or not self.has_changed():
            return cleaned
        current = (
            type(instance)
            .objects.select_for_update()
            .filter(pk=instance.pk)
            .values_list("version", flat=True)
            .first()
        )
        opened = cleaned.get("opened_version")
        if self.check_version and opened != current:
            raise forms.ValidationError(
                f"This {instance._meta.verbose_name} was changed by someone else since you "
                f"opened it (your version {opened}, now {current}); nothing was saved. Reload "
                "the page to see their changes, then make yours again.",
                code="stale",
            )
        instance.version = (current or 0) + 1
        return cleaned


class ListEditableVersionForm(VersionedForm):
    """The change list's inline edits post no version: not checked, but still counted, so an
    open change form or API copy made before them goes stale."""

    check_version = False


class VersionedAdmin(admin.ModelAdmin):
    form = VersionedForm

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", ListEditableVersionForm)
        return super().get_changelist_form(request, **kwargs)


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
class CollectionAdmin(VersionedAdmin):
    list_display = ("slug", "english_title", "published", "position")
    list_editable = ("published", "position")
    search_fields = ("slug", "title")
    prepopulated_fields = {}

    @admin.display(description="Title")
    def english_title(self, obj: Collection) -> str:
        return langmap_get(obj.title)


class ItemImageInline(admin.TabularInline):
    form = VersionedForm
    model = ItemImage
    extra = 0
    fields = ("preview", "is_primary", "position", "width", "height", "original", "opened_version")
    readonly_fields = ("preview", "width", "height", "original")
    show_change_link = True

    @admin.display(description="Preview")
    def preview(self, obj: ItemImage) -> str:
        return image_preview(obj)

    def has_add_permission(self, request, obj=None) -> bool:
        # Images come in through the upload service (validation, checksums, derivatives).
        return False


@admin.register(HeritageItem)
class HeritageItemAdmin(VersionedAdmin):
    list_display = ("accession_number", "english_title", "collection", "period", "published")
    list_filter = ("collection", "published")
    list_select_related = ("collection",)
    search_fields = ("accession_number", "title", "description", "place", "period")
    inlines = [ItemImageInline]

    @admin.display(description="Title")
    def english_title(self, obj: HeritageItem) -> str:
        return langmap_get(obj.title)


class SemioticAnnotationInline(admin.StackedInline):
    form = VersionedForm
    model = SemioticAnnotation
    extra = 0
    fields = (
        "category",
        "motifs",
        ("region_x", "region_y", "region_w", "region_h"),
        "meaning",
        "annotator",
        "annotated_on",
        "opened_version",
    )
    filter_horizontal = ("motifs",)


@admin.register(ItemImage)
class ItemImageAdmin(VersionedAdmin):
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
class SemioticAnnotationAdmin(VersionedAdmin):
    list_display = ("id", "image", "category", "annotator", "annotated_on")
    list_filter = ("category", "motifs")
    list_select_related = ("image__item", "annotator")
    filter_horizontal = ("motifs",)


@admin.register(GazetteerPassage)
class GazetteerPassageAdmin(VersionedAdmin):
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
