"""Admin for jobs: written by the queue's services only, so read-only here (cancel excepted)."""

from __future__ import annotations

from django.contrib import admin, messages

from jobs.models import Job
from jobs.queue import JobStateError, job_cancel


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["kind", "status", "progress", "message", "attempts", "created_by", "created_at"]
    list_filter = ["status", "queue", "kind"]
    search_fields = ["id", "kind", "message", "error"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel_jobs(self, request, queryset):
        cancelled = 0
        for job in queryset:
            try:
                job_cancel(job=job)
                cancelled += 1
            except JobStateError:
                pass
        self.message_user(request, f"{cancelled} job(s) cancelled or asked to stop.", messages.INFO)
