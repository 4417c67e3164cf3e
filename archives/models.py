"""Preservation layer and background jobs.

``StoredFile`` is the one record of every file the service keeps (through Django's storage
API, with its sha256), so fixity checks and BagIt exports see everything. ``Job`` is the source
of truth for all background work; RQ only carries job ids.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class StoredFile(models.Model):
    """A file in the default storage with the checksum recorded when it was written."""

    name = models.CharField(max_length=500, unique=True, help_text="Path in the storage backend.")
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
        from django.core.files.storage import default_storage

        return default_storage.url(self.name)


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100, db_index=True)
    queue = models.CharField(max_length=20, default="default")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    params = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    # Live figures a page may plot (e.g. training: step, loss, lr, eta). Bounded by the writer.
    data = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    timeout = models.PositiveIntegerField(help_text="Seconds before RQ kills the job.")
    worker_name = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
