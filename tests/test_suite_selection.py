"""CI's PostgreSQL pass (ATELIER_SERVICE_TESTS_ONLY=1 in .ci/run) keeps every test that reaches
the database or Redis and drops only those that reach neither."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def collected(**env: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
         "tests/jobs/test_jobs.py", "tests/generation/diffusion/test_lora_files.py",
         "tests/generation/test_run_truth.py", "tests/heritage/test_kiosk_browser.py"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, check=True,
    )  # fmt: skip
    return {line for line in done.stdout.splitlines() if "::" in line}


def test_the_service_pass_keeps_database_and_redis_tests_and_drops_the_rest():
    everything = collected(ATELIER_SERVICE_TESTS_ONLY="0")
    services = collected(ATELIER_SERVICE_TESTS_ONLY="1")
    assert services < everything
    dropped = everything - services
    # Pure ML on files (no database, no Redis): dropped.
    assert dropped and all("test_lora_files.py" in t for t in dropped)
    # A real worker and Redis (start_worker, redis_conn), a django_db module mark, and a browser
    # against the live server (transactional_db through live_server): kept.
    kept_files = {t.split("::")[0] for t in services}
    assert kept_files == {
        "tests/jobs/test_jobs.py",
        "tests/generation/test_run_truth.py",
        "tests/heritage/test_kiosk_browser.py",
    }
    assert {t for t in everything if "test_lora_files.py" not in t} <= services
