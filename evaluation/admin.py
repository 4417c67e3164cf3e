"""Admin of the evaluation app (curators manage panels here; studies are read mostly)."""

from django.contrib import admin, messages

from evaluation.models import (
    Assignment,
    MemorisationCheck,
    MetricResult,
    Panel,
    Rating,
    RatingChange,
    Study,
    StudyItem,
    StudyReference,
)


@admin.register(Panel)
class PanelAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    filter_horizontal = ["members"]
    search_fields = ["name"]


class StudyItemInline(admin.TabularInline):
    model = StudyItem
    extra = 0
    fields = ["token", "kind", "condition", "group", "generated", "reference"]
    readonly_fields = fields
    can_delete = False


class StudyReferenceInline(admin.TabularInline):
    # Declared on the report page or the API (services.study_references_set), shown here.
    model = StudyReference
    extra = 0
    fields = ["image", "added_by", "added_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["title", "panel", "status", "assignment_mode", "created_at"]
    list_filter = ["status", "assignment_mode"]
    # Closing and reopening go through the services (reopening withdraws kiosk approvals).
    readonly_fields = ["status", "seed", "created_at", "closed_at"]
    inlines = [StudyItemInline, StudyReferenceInline]
    actions = ["close_studies", "reopen_studies"]

    @admin.action(description="Close the selected studies (ratings final)")
    def close_studies(self, request, queryset):
        from evaluation.services import study_close

        for study in queryset:
            study_close(study=study)
        messages.success(request, f"{queryset.count()} study(ies) closed.")

    @admin.action(description="Reopen the selected studies (withdraws kiosk approvals)")
    def reopen_studies(self, request, queryset):
        from evaluation.services import study_reopen, withdrawn_message

        for study in queryset:
            withdrawn = study_reopen(study=study)
            notify = messages.warning if withdrawn else messages.success
            notify(request, f"{study.title}: {withdrawn_message(withdrawn)}")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["study", "expert", "position", "item"]
    list_filter = ["study"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["study", "item", "expert", "dimension", "score", "updated_at"]
    list_filter = ["study", "dimension"]

    # Experts change their scores through the form (services.rating_submit keeps the history).
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RatingChange)
class RatingChangeAdmin(admin.ModelAdmin):
    list_display = ["changed_at", "study", "item", "expert", "dimension", "old_score", "new_score"]
    list_filter = ["study", "dimension"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MetricResult)
class MetricResultAdmin(admin.ModelAdmin):
    list_display = ["generated", "reference", "condition", "mse", "psnr", "ssim", "study"]
    list_filter = ["condition", "study"]


@admin.register(MemorisationCheck)
class MemorisationCheckAdmin(admin.ModelAdmin):
    list_display = ["generated", "near_copy", "similarity", "hash_distance", "nearest"]
    list_filter = ["near_copy"]
