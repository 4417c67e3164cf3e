"""Admin for stored files: written by services only, so read-only here."""

from __future__ import annotations

from django.contrib import admin

from archives.models import StoredFile
from jobs.admin import ReadOnlyAdmin


@admin.register(StoredFile)
class StoredFileAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "size",
        "content_type",
        "created_at",
        "last_fixity_at",
        "last_fixity_ok",
    ]
    list_filter = ["last_fixity_ok", "content_type"]
    search_fields = ["name", "sha256"]
