import pytest

from jobs.models import Job
from jobs.queue import job_enqueue
from tests.conftest import wait_for


@pytest.mark.worker
def test_a_job_round_trips_through_a_real_worker(start_worker):
    job = job_enqueue(kind="jobs.selftest", params={"steps": 3})
    start_worker(("default",))
    done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=Job.Status.SUCCEEDED).first())
    assert done.result == {"counted": 3}
    assert done.progress == 1.0
    assert done.attempts == 1
