"""The background-job machinery every app uses.

An app declares a job kind next to its handler, in its own ``jobs.py``::

    @job_handler("heritage.derivatives", queue="default", timeout=600)
    def make_derivatives(job: Job) -> dict:
        image = ItemImage.objects.get(pk=job.params["image_id"])
        job_progress(job, 0.5, "thumbnail written")
        return {"sizes": [...]}

and a service queues it with ``job_enqueue(kind=..., params={...})``. The ``Job`` row is the
truth: RQ carries only the id, enqueueing waits for the transaction to commit, and
``run_job`` claims the row atomically so a duplicate delivery does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Conflict
from jobs.models import Job, WorkerHeartbeat

logger = logging.getLogger(__name__)

QUEUES = ("default", "gpu")


class JobStateError(Conflict):
    """The job is not in a state that allows the requested change (409 in the API)."""


class JobCancelled(Exception):
    """Raised inside a handler (by job_progress) when a curator cancelled the job."""


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Callable[[Job], dict[str, Any] | None]
    queue: str
    timeout: int


_KINDS: dict[str, JobKind] = {}


def job_handler(kind: str, *, queue: str = "default", timeout: int | None = None):
    """Register ``func(job) -> result dict`` as the handler of ``kind``."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; use one of {QUEUES}")

    def register(func: Callable[[Job], dict[str, Any] | None]):
        _KINDS[kind] = JobKind(
            name=kind,
            handler=func,
            queue=queue,
            timeout=timeout or settings.ATELIER_JOB_TIMEOUTS[queue],
        )
        return func

    return register


def job_kind(kind: str) -> JobKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise LookupError(f"no job handler is registered for kind {kind!r}") from None


def registered_kinds() -> dict[str, JobKind]:
    return dict(_KINDS)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- worker liveness ----------------------------------------------------------------------
# A SimpleWorker runs the job in its main thread, so RQ's own worker heartbeat stops for the
# whole job (its key is kept alive for the job's timeout, up to a day for gpu work). Each
# Atelier worker therefore beats from a thread of its own, into its WorkerHeartbeat row in the
# database: that survives Redis restarting empty, which RQ's registration does not. Freshness
# compares the worker's clock with the reader's: hosts keep time with NTP.

HEARTBEAT_INTERVAL = 5
HEARTBEAT_TTL = 3 * HEARTBEAT_INTERVAL  # a row older than this is a dead (or stuck) worker


def worker_heartbeat_beat(*, name: str, queues: list[str] | tuple[str, ...]) -> None:
    """Upsert the worker's row with ``last_seen`` = now."""
    host, _, pid = name.rpartition(":")
    WorkerHeartbeat.objects.update_or_create(
        name=name,
        defaults={
            "queues": list(queues),
            "hostname": host,
            "pid": int(pid) if pid.isdigit() else None,
            "last_seen": timezone.now(),
        },
    )


def worker_heartbeat_start(*, name: str, queues: list[str] | tuple[str, ...]) -> Callable[[], None]:
    """Beat for ``name`` every few seconds from a thread; returns ``stop()``, which ends the
    beating and deletes the row (a clean shutdown: the worker stops counting at once)."""
    from django.db import connection as db

    stop = threading.Event()
    worker_heartbeat_beat(name=name, queues=queues)  # counted before the first job arrives

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                worker_heartbeat_beat(name=name, queues=queues)
            except Exception:  # database briefly away: reconnect and try again next beat
                logger.warning("worker heartbeat to the database failed", exc_info=True)
                db.close()
        try:
            WorkerHeartbeat.objects.filter(name=name).delete()
        finally:
            db.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name="atelier-heartbeat", daemon=True)
    thread.start()

    def stop_beating() -> None:
        stop.set()
        thread.join(timeout=10)

    return stop_beating


def live_workers(queue: str | None = None):
    """Heartbeat rows of the workers alive now (on ``queue`` when given)."""
    fresh = WorkerHeartbeat.objects.filter(
        last_seen__gte=timezone.now() - timedelta(seconds=HEARTBEAT_TTL)
    )
    rows = [row for row in fresh if not worker_is_local(row.name) or worker_is_alive(row.name)]
    return [row for row in rows if queue is None or queue in row.queues]


def _local_pid(worker_name: str) -> int | None:
    """The pid in a ``host:pid`` worker name when the host is this one."""
    host, _, pid = worker_name.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_is_alive(worker_name: str) -> bool:
    """A worker on this host is alive while its process exists (known at once); one on another
    host while its heartbeat row is fresh."""
    if not worker_name:
        return False
    pid = _local_pid(worker_name)
    if pid is not None:
        return _pid_alive(pid)
    return WorkerHeartbeat.objects.filter(
        name=worker_name, last_seen__gte=timezone.now() - timedelta(seconds=HEARTBEAT_TTL)
    ).exists()


def worker_is_local(worker_name: str) -> bool:
    return _local_pid(worker_name) is not None


# --- writes -------------------------------------------------------------------------------


def job_enqueue(
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    user=None,
    max_attempts: int = 3,
    timeout: int | None = None,
) -> Job:
    """Create the Job row and push its id to RQ once the surrounding transaction commits.

    ``timeout`` (seconds) overrides the kind's own limit for this one job.
    """
    spec = job_kind(kind)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if timeout is not None and timeout < 1:
        raise ValueError("timeout must be at least 1 second")
    job = Job.objects.create(
        kind=kind,
        queue=spec.queue,
        params=params or {},
        timeout=timeout or spec.timeout,
        max_attempts=max_attempts,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: push_to_queue(job))
    return job


def push_to_queue(job: Job) -> None:
    """Put the job id on its RQ queue (used at enqueue time and by the reconciler).

    The RQ job id is the Job id, so pushing twice leaves one RQ job (delivered at most twice,
    and ``run_job`` ignores the second delivery).
    """
    import django_rq

    queue = django_rq.get_queue(job.queue)
    queue.enqueue(
        "jobs.queue.run_job",
        str(job.id),
        job_id=str(job.id),
        job_timeout=job.timeout,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )


def _remove_from_queue(job: Job) -> None:
    """Take a cancelled job's id off its RQ queue (best effort: run_job ignores it anyway)."""
    try:
        import django_rq

        django_rq.get_queue(job.queue).remove(str(job.id))
    except Exception:
        logger.warning("could not remove job %s from queue %s", job.id, job.queue, exc_info=True)


def job_progress(
    job: Job, fraction: float, message: str = "", *, data: dict[str, Any] | None = None
) -> None:
    """Record progress (0-1) and live data; raise JobCancelled when cancel was requested.

    Long handlers should call this at least every few seconds: it is how a running job learns
    it was cancelled.
    """
    fraction = min(max(float(fraction), 0.0), 1.0)
    now = timezone.now()
    fields: dict[str, Any] = {"progress": fraction, "message": message[:500], "heartbeat_at": now}
    if data is not None:
        fields["data"] = data
        job.data = data
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(**fields)
    job.progress, job.message, job.heartbeat_at = fraction, message[:500], now
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled(f"job {job.pk} was cancelled")


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next progress report.

    A SimpleWorker runs the handler in its own main thread, so there is no work-horse process
    for RQ's stop-job command to kill: cancelling a running job is cooperative (job_progress).
    """
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status == Job.Status.QUEUED:
            locked.status = Job.Status.CANCELLED
            locked.cancel_requested = True
            locked.finished_at = timezone.now()
            locked.message = "cancelled before it started"
            transaction.on_commit(lambda: _remove_from_queue(locked))
        elif locked.status == Job.Status.RUNNING:
            locked.cancel_requested = True
            locked.message = "cancellation requested"
        else:
            raise JobStateError(
                f"job is already {locked.status}; only queued or running jobs can be cancelled"
            )
        locked.save(update_fields=["status", "cancel_requested", "finished_at", "message"])
    return locked


def _close_stale_connections() -> None:
    """Drop stale database connections, as a request would, unless we are inside a transaction
    (``run_job`` called in-process, as tests and ``load_demo_catalogue`` do): closing would
    break it."""
    from django.db import connection

    if not connection.in_atomic_block:
        close_old_connections()


def _finish(job_id, worker: str, status: str, **fields: Any) -> bool:
    """Record the outcome, unless the row was meanwhile re-queued or claimed by another worker."""
    _close_stale_connections()  # after a long job the connection may be stale
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, worker_name=worker).update(
            status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
        )
    )


def run_job(job_id: str) -> dict[str, Any] | None:
    """The single RQ entry point: claim the row, run its handler, record the outcome."""
    from rq.timeouts import JobTimeoutException

    _close_stale_connections()
    me = worker_identity()
    now = timezone.now()
    claimed = Job.objects.filter(
        pk=job_id, status=Job.Status.QUEUED, cancel_requested=False
    ).update(
        status=Job.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker_name=me,
        message="started",
    )
    if not claimed:
        # Duplicate delivery, cancelled, or already done: do nothing.
        logger.info("job %s is not queued; skipping this delivery", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    try:
        result = job_kind(job.kind).handler(job) or {}
    except JobCancelled:
        _finish(job.pk, me, Job.Status.CANCELLED, message="cancelled")
        return None
    except JobTimeoutException:
        logger.error("job %s (%s) timed out after %ss", job.pk, job.kind, job.timeout)
        _finish(
            job.pk,
            me,
            Job.Status.FAILED,
            error=f"timed out after {job.timeout} s\n\n{traceback.format_exc()}",
            message=f"failed: timed out after {job.timeout} s",
        )
        return None
    except DjangoValidationError as exc:
        # A refusal the service explains (bad model path, dataset changed): its messages are
        # for the user, as a request's 400 would be; no traceback.
        text = " ".join(exc.messages)
        logger.info("job %s (%s) refused: %s", job.pk, job.kind, text)
        _finish(job.pk, me, Job.Status.FAILED, error=text, message=f"failed: {text}"[:500])
        return None
    except Exception as exc:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        _finish(
            job.pk,
            me,
            Job.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
            message=f"failed: {exc}"[:500],
        )
        return None
    # A handler may say what it did in a line (result["message"]); else "done".
    message = str(result.get("message") or "done")[:500]
    _finish(job.pk, me, Job.Status.SUCCEEDED, result=result, progress=1.0, message=message)
    return result
