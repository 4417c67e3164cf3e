"""The job queue with a real Redis and real worker processes: progress, faults, cancel."""

from __future__ import annotations

import signal

import pytest
from rest_framework.test import APIClient
from rq.job import Job as RQJob

from jobs.jobs import SELFTEST_RUNS_KEY
from jobs.models import Job
from jobs.queue import job_enqueue, push_to_queue, run_job
from jobs.reconcile import jobs_reconcile
from tests.conftest import make_user, wait_for

pytestmark = pytest.mark.worker


def runs(redis_conn, job: Job) -> int:
    """How many times the selftest handler started for ``job``."""
    return int(redis_conn.hget(SELFTEST_RUNS_KEY, str(job.pk)) or 0)


def status_of(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def test_progress_is_visible_through_the_api_while_the_job_runs(start_worker, redis_conn):
    user = make_user("owner")
    job = job_enqueue(kind="jobs.selftest", params={"steps": 20, "sleep": 0.15}, user=user)
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "queued"

    start_worker(("default",))

    def running_with_progress():
        body = client.get(f"/api/v1/jobs/{job.pk}/").json()
        return body if body["status"] == "running" and 0 < body["progress"] < 1 else None

    seen = wait_for(running_with_progress, interval=0.05)
    assert seen["message"].startswith("step ")
    assert "step" in seen["data"]

    done = wait_for(
        lambda: (b := client.get(f"/api/v1/jobs/{job.pk}/").json())["status"] == "succeeded" and b,
    )
    assert done["progress"] == 1.0
    assert done["result"] == {"counted": 20}
    assert done["attempts"] == 1
    assert done["finished_at"] is not None
    assert runs(redis_conn, job) == 1


def test_a_failing_handler_records_the_error_with_its_traceback(start_worker, redis_conn):
    job = job_enqueue(kind="jobs.selftest", params={"steps": 1, "fail": "disk on fire"})
    start_worker(("default",))
    failed = wait_for(lambda: status_of(job).status == Job.Status.FAILED and status_of(job))
    assert "RuntimeError: disk on fire" in failed.error
    assert "Traceback" in failed.error
    assert failed.message == "failed: disk on fire"


def test_each_kind_has_its_timeout_and_an_overrun_fails_the_job(start_worker, redis_conn):
    from jobs.queue import job_kind

    assert job_kind("jobs.selftest").timeout == 120
    assert job_enqueue(kind="jobs.selftest").timeout == 120
    job = job_enqueue(kind="jobs.selftest", params={"steps": 100, "sleep": 0.1}, timeout=1)
    start_worker(("default",))
    failed = wait_for(lambda: status_of(job).status == Job.Status.FAILED and status_of(job))
    assert failed.message == "failed: timed out after 1 s"
    assert failed.progress < 1


def _start_long_job_and_kill_its_worker(start_worker, **enqueue) -> Job:
    job = job_enqueue(kind="jobs.selftest", params={"steps": 200, "sleep": 0.1}, **enqueue)
    worker = start_worker(("default",))
    wait_for(lambda: status_of(job).progress > 0, message=worker.output())
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    assert status_of(job).status == Job.Status.RUNNING  # the row still says running
    return job


def test_a_job_whose_worker_was_killed_is_requeued_and_finished_by_a_new_worker(
    start_worker, redis_conn
):
    job = _start_long_job_and_kill_its_worker(start_worker)

    report = jobs_reconcile()
    assert report["requeued_orphaned"] == 1
    requeued = status_of(job)
    assert requeued.status == Job.Status.QUEUED
    assert "died" in requeued.message

    job.params = {"steps": 2, "sleep": 0.01}  # make the second attempt quick
    Job.objects.filter(pk=job.pk).update(params=job.params)
    start_worker(("default",))
    done = wait_for(lambda: status_of(job).status == Job.Status.SUCCEEDED and status_of(job))
    assert done.attempts == 2
    assert done.result == {"counted": 2}
    assert runs(redis_conn, job) == 2


def test_a_killed_job_with_no_attempts_left_is_marked_failed(start_worker, redis_conn):
    job = _start_long_job_and_kill_its_worker(start_worker, max_attempts=1)

    report = jobs_reconcile()
    assert report["failed_orphaned"] == 1
    failed = status_of(job)
    assert failed.status == Job.Status.FAILED
    assert "died" in failed.error
    assert failed.finished_at is not None
    assert jobs_reconcile()["failed_orphaned"] == 0  # nothing left to resolve


def test_after_redis_flushall_the_reconciler_gets_every_queued_job_done_exactly_once(
    start_worker, redis_conn
):
    jobs = [job_enqueue(kind="jobs.selftest", params={"steps": 1, "sleep": 0.01}) for _ in range(6)]
    redis_conn.flushdb()  # Redis restarted without persistence: our database of it is empty

    assert jobs_reconcile()["requeued_lost"] == 6
    assert jobs_reconcile()["requeued_lost"] == 0  # now they are on the queue again
    push_to_queue(jobs[0])  # and one duplicate delivery on top

    start_worker(("default",))
    wait_for(
        lambda: Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 6,
        message="not every job succeeded",
    )
    assert [runs(redis_conn, job) for job in jobs] == [1] * 6
    assert {status_of(job).attempts for job in jobs} == {1}


def test_cancelling_a_queued_job_removes_it_from_the_queue(start_worker, redis_conn):
    import django_rq

    curator = make_user("cur", "curator")
    job = job_enqueue(kind="jobs.selftest", params={"steps": 1}, user=curator)
    queue = django_rq.get_queue("default")
    assert str(job.pk) in queue.get_job_ids()

    client = APIClient()
    client.force_authenticate(curator)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert str(job.pk) not in queue.get_job_ids()

    # A delivery that was already in flight does nothing either.
    assert run_job(str(job.pk)) is None
    assert status_of(job).status == Job.Status.CANCELLED
    assert runs(redis_conn, job) == 0
    assert jobs_reconcile()["requeued_lost"] == 0  # cancelled jobs are not brought back

    again = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


def test_cancelling_a_running_job_stops_it(start_worker, redis_conn):
    curator = make_user("cur", "curator")
    job = job_enqueue(kind="jobs.selftest", params={"steps": 300, "sleep": 0.1}, user=curator)
    start_worker(("default",))
    wait_for(lambda: status_of(job).progress > 0)

    client = APIClient()
    client.force_authenticate(curator)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True

    cancelled = wait_for(lambda: status_of(job).status == Job.Status.CANCELLED and status_of(job))
    assert cancelled.progress < 1
    assert cancelled.finished_at is not None


def test_a_duplicate_delivery_of_a_finished_job_does_nothing(start_worker, redis_conn):
    job = job_enqueue(kind="jobs.selftest", params={"steps": 1, "sleep": 0.01})
    start_worker(("default",))
    done = wait_for(lambda: status_of(job).status == Job.Status.SUCCEEDED and status_of(job))

    push_to_queue(job)  # delivered again through the worker
    assert run_job(str(job.pk)) is None  # and directly
    wait_for(
        lambda: RQJob.fetch(str(job.pk), connection=redis_conn).get_status() == "finished",
    )

    after = status_of(job)
    assert (after.status, after.attempts, after.finished_at) == (
        Job.Status.SUCCEEDED,
        1,
        done.finished_at,
    )
    assert runs(redis_conn, job) == 1
