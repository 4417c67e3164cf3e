"""Fixity: re-hash every stored file through the storage API against its recorded sha256.

A run records one ``FixityEvent`` (counts plus the changed and missing files) and sets
``last_fixity_at``/``last_fixity_ok`` on each file, so the staff page can list the problems.
Run it as the ``archives.fixity`` job (``manage.py check_fixity`` from cron, or the button on
/archives/), or synchronously with ``check_fixity --now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from archives.models import FixityEvent, StoredFile
from jobs.models import Job

CHUNK = 1024 * 1024
# Lists on the event are bounded so one bad disk does not make a row of megabytes; the counts
# are exact and every file's own last_fixity_ok says the rest.
MAX_LISTED = 500
FIXITY_KIND = "archives.fixity"


def sha256_of_stored(name: str) -> str | None:
    """The sha256 of the stored bytes, or None when the storage no longer has the file."""
    try:
        handle = default_storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        return None
    digest = hashlib.sha256()
    with handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fixity_check(
    *,
    job: Job | None = None,
    trigger: str = "",
    progress: Callable[[float, str], None] | None = None,
) -> FixityEvent:
    """Check every StoredFile; record and return the event. ``progress(fraction, message)``."""
    started = timezone.now()
    total = StoredFile.objects.count()
    checked = ok_count = changed_count = missing_count = 0
    changed: list[dict] = []
    missing: list[dict] = []
    # Iterate by primary key in batches so files written during the run don't upset paging.
    last_pk = 0
    while True:
        batch = list(StoredFile.objects.filter(pk__gt=last_pk).order_by("pk")[:200])
        if not batch:
            break
        for stored in batch:
            last_pk = stored.pk
            exists = default_storage.exists(stored.name)
            actual = sha256_of_stored(stored.name) if exists else None
            now = timezone.now()
            if actual is None:
                ok = False
                missing_count += 1
                if len(missing) < MAX_LISTED:
                    missing.append({"name": stored.name, "expected": stored.sha256})
            elif actual != stored.sha256:
                ok = False
                changed_count += 1
                if len(changed) < MAX_LISTED:
                    changed.append(
                        {"name": stored.name, "expected": stored.sha256, "actual": actual}
                    )
            else:
                ok = True
                ok_count += 1
            StoredFile.objects.filter(pk=stored.pk).update(last_fixity_at=now, last_fixity_ok=ok)
            checked += 1
        if progress is not None:
            progress(checked / max(total, 1), f"checked {checked} of {total} files")
    return FixityEvent.objects.create(
        job=job,
        started_at=started,
        finished_at=timezone.now(),
        outcome=(
            FixityEvent.Outcome.SUCCESS
            if not (changed_count or missing_count)
            else FixityEvent.Outcome.FAILURE
        ),
        checked=checked,
        ok_count=ok_count,
        changed=changed,
        missing=missing,
        changed_count=changed_count,
        missing_count=missing_count,
        trigger=trigger[:20],
    )


def fixity_enqueue(*, user=None, trigger: str = "manual") -> Job:
    """Queue a fixity run on the ``default`` queue (unless one is already waiting or running)."""
    from jobs.queue import job_enqueue

    pending = Job.objects.filter(
        kind=FIXITY_KIND, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
    ).first()
    if pending is not None:
        return pending
    return job_enqueue(kind=FIXITY_KIND, params={"trigger": trigger}, user=user)


def fixity_problems() -> tuple[list[StoredFile], int]:
    """Stored files whose last check failed (first 200) and how many there are."""
    failing = StoredFile.objects.filter(Q(last_fixity_ok=False)).order_by("name")
    return list(failing[:200]), failing.count()
