"""The preservation layer's own rows in bags: none leave. Jobs and the export and import
records are facts about this instance; a reference to one is written as null."""

from __future__ import annotations

from archives.bag_registry import RecordRules, register_records
from archives.models import BagExport, BagImport
from jobs.models import Job

register_records(
    *(RecordRules(model._meta.label_lower, exported=False) for model in (Job, BagExport, BagImport))
)
