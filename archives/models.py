"""Preservation layer.

``StoredFile`` is the one record of every file the service keeps (through Django's storage
API, with its sha256), so fixity checks and BagIt exports see everything.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class StoredFile(models.Model):
    """A file in the default storage with the checksum recorded when it was written."""

    name = models.CharField(max_length=500, unique=True, help_text="Path in the storage backend.")
    # The only name a download URL carries: random, so it reveals neither the storage path nor
    # the order files were written in (blind copies depend on that).
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_fixity_at = models.DateTimeField(null=True, blank=True)
    last_fixity_ok = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"

    @property
    def url(self) -> str:
        """The permission-checked download view (archives/downloads.py), never the storage URL."""
        from django.urls import reverse

        return reverse("stored-file", kwargs={"token": self.token})


# --- preservation records (BagIt packages and fixity; see archives/fixity.py, bagit_*.py) ---


class FixityEvent(models.Model):
    """One run of the fixity check: every stored file re-hashed against its recorded sha256."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"

    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    checked = models.PositiveIntegerField(default=0)
    ok_count = models.PositiveIntegerField(default=0)
    # [{"name", "expected", "actual"}] and [{"name"}]: bounded lists, counts are exact.
    changed = models.JSONField(default=list, blank=True)
    missing = models.JSONField(default=list, blank=True)
    changed_count = models.PositiveIntegerField(default=0)
    missing_count = models.PositiveIntegerField(default=0)
    trigger = models.CharField(max_length=20, blank=True, help_text="schedule, manual or api.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"fixity {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"


class BagExport(models.Model):
    """A BagIt package of a collection, training run or study, built by a job."""

    class Format(models.TextChoices):
        TAR = "tar"
        ZIP = "zip"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A scope an app registered in its bag.py (archives.bag_registry), checked on export.
    scope = models.CharField(max_length=20)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=300, blank=True)
    archive_format = models.CharField(max_length=5, choices=Format.choices, default=Format.TAR)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archive = models.ForeignKey(
        StoredFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bag_name = models.CharField(max_length=200, blank=True)
    payload_files = models.PositiveIntegerField(default=0)
    payload_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"bag {self.scope} {self.target_label or self.target_id}"

    @property
    def external_identifier(self) -> str:
        return f"urn:uuid:{self.id}"


class BagImport(models.Model):
    """A bag that was validated and imported: what came in, from where, and by whom."""

    bag_name = models.CharField(max_length=200)
    external_identifier = models.CharField(max_length=300, blank=True)
    source_organisation = models.CharField(max_length=300, blank=True)
    scope = models.CharField(max_length=20, blank=True)
    records = models.JSONField(default=dict, blank=True, help_text="Count per model.")
    files = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.bag_name}"
