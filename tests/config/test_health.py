"""/healthz tells the truth: workers counted after Redis restarts empty, a database that
answers reads but refuses writes is an error."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from urllib.parse import quote

import pytest
import requests
from django.test import Client
from rq import Worker

from jobs.embedded_redis import free_port
from jobs.models import Job, WorkerHeartbeat
from jobs.queue import job_enqueue
from tests.conftest import ROOT, wait_for, worker_environment

pytestmark = pytest.mark.worker


def workers() -> dict[str, int]:
    return Client().get("/healthz").json()["workers"]


def test_a_live_worker_still_counts_and_works_after_redis_flushall(start_worker, redis_conn):
    import django_rq

    worker = start_worker(("default",))
    wait_for(lambda: workers() == {"default": 1, "gpu": 0}, message=worker.output())
    row = WorkerHeartbeat.objects.get()
    assert (row.queues, row.pid) == (["default"], worker.process.pid)

    redis_conn.flushdb()  # Redis restarted without persistence (our database of it)
    assert workers() == {"default": 1, "gpu": 0}
    # It keeps beating into its row, so it is still counted after the rows' freshness window.
    seen = row.last_seen
    wait_for(lambda: WorkerHeartbeat.objects.get().last_seen > seen)

    # Jobs queued after the flush are still picked up...
    job = job_enqueue(kind="jobs.selftest", params={"steps": 1, "sleep": 0.01})
    wait_for(
        lambda: Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED,
        message=worker.output(),
    )
    # ...and the worker puts itself back on RQ's lists (dashboard, Worker.all).
    queue = django_rq.get_queue("default")
    wait_for(lambda: Worker.all(queue=queue), message=worker.output())
    assert workers() == {"default": 1, "gpu": 0}


def test_a_worker_counts_while_a_long_job_holds_it_and_not_after_a_clean_stop(
    start_worker, redis_conn
):
    worker = start_worker(("gpu", "default"))
    job = job_enqueue(kind="jobs.selftest", params={"steps": 300, "sleep": 0.1})
    wait_for(lambda: Job.objects.get(pk=job.pk).progress > 0, message=worker.output())
    seen = WorkerHeartbeat.objects.get().last_seen
    wait_for(lambda: WorkerHeartbeat.objects.get().last_seen > seen)  # mid-job beat
    assert workers() == {"default": 1, "gpu": 1}

    worker.process.send_signal(signal.SIGTERM)  # warm shutdown: the job finishes, then it exits
    worker.process.wait(timeout=60)
    assert not WorkerHeartbeat.objects.exists()
    assert workers() == {"default": 0, "gpu": 0}


def test_a_remote_worker_counts_by_its_heartbeat_row_alone(db, redis_conn):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.queue import HEARTBEAT_TTL

    WorkerHeartbeat.objects.create(
        name="gpu-host-7:4242", queues=["gpu"], hostname="gpu-host-7", last_seen=timezone.now()
    )
    WorkerHeartbeat.objects.create(
        name="gpu-host-8:4242",
        queues=["gpu"],
        hostname="gpu-host-8",
        last_seen=timezone.now() - timedelta(seconds=HEARTBEAT_TTL + 1),
    )
    assert workers() == {"default": 0, "gpu": 1}  # the stale one is not counted


def test_a_database_that_answers_reads_but_refuses_writes_is_reported_with_503(
    transactional_db, tmp_path
):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the read-only file case is SQLite's")
    copy = tmp_path / "readonly.sqlite3"
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(copy)])  # a consistent copy of the test database
    with sqlite3.connect(copy) as db:
        db.execute("PRAGMA journal_mode=WAL")  # as the site keeps it, so reads still work
    port = free_port()
    # Opened read-only (SQLite's mode=ro; a chmod would not stop root): SELECT works, writes fail.
    url = f"sqlite:///file:{quote(str(copy))}%3Fmode%3Dro"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**worker_environment(), "DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answer():
            try:
                return [requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)]
            except requests.ConnectionError:
                return None  # not listening yet

        [response] = wait_for(answer, interval=0.3)
        body = response.json()
        assert response.status_code == 503, body
        assert body["status"] == "error"
        assert body["database"] == "error: OperationalError"
        assert body["redis"] == "ok"
        # The same server reads the copy fine: only writes are refused.
        assert requests.get(f"http://127.0.0.1:{port}/api/v1/", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)
