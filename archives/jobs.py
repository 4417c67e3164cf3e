"""Job kinds of the preservation layer: fixity runs and BagIt exports (``default`` queue).

Found by ``autodiscover_modules("jobs")`` in ``jobs.apps``; jobs imports nothing of archives.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from archives.models import BagExport
from jobs.models import Job
from jobs.queue import job_handler, job_progress


@job_handler("archives.fixity", queue="default", timeout=6 * 60 * 60)
def fixity_run(job: Job) -> dict:
    """Re-hash every stored file; the FixityEvent row holds the details."""
    from archives.fixity import fixity_check

    event = fixity_check(
        job=job,
        trigger=str(job.params.get("trigger", "")),
        progress=lambda fraction, message: job_progress(job, fraction * 0.99, message),
    )
    return {
        "event_id": event.pk,
        "outcome": event.outcome,
        "checked": event.checked,
        "ok": event.ok_count,
        "changed": event.changed_count,
        "missing": event.missing_count,
    }


@job_handler("archives.bag_export", queue="default", timeout=6 * 60 * 60)
def bag_export_run(job: Job) -> dict:
    """Build the bag of a BagExport row, pack it and store the archive."""
    from archives.bagit_export import bag_export_archive_store, bag_export_file

    export = BagExport.objects.get(pk=job.params["export_id"])
    suffix = ".tar" if export.archive_format == BagExport.Format.TAR else ".zip"
    with tempfile.TemporaryDirectory(prefix="atelier-export-job-") as tmp:
        target = Path(tmp) / f"bag{suffix}"
        built = bag_export_file(
            scope=export.scope,
            target_id=export.target_id,
            archive_format=export.archive_format,
            target=target,
            external_identifier=export.external_identifier,
            agent=export.created_by,
            progress=lambda fraction, message: job_progress(job, fraction * 0.95, message),
        )
        job_progress(job, 0.96, "storing the archive")
        stored = bag_export_archive_store(
            export=export,
            archive=target,
            bag_name=built.name,
            payload_files=built.payload_files,
            payload_bytes=built.payload_bytes,
        )
    return {
        "export_id": str(export.pk),
        "bag_name": built.name,
        "archive": stored.name,
        "sha256": stored.sha256,
        "size": stored.size,
        "payload_files": built.payload_files,
    }
