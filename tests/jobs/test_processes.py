"""Whole processes: production settings, the web process without torch, `atelier_run`."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from jobs.embedded_redis import free_port, redis_answers
from tests.conftest import ROOT, worker_environment


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def production_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        ATELIER_ENV="production",
        ATELIER_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="atelier.example.org",
    )
    # The museum's C2PA signing certificate (docs/content-credentials.md): here a throwaway one.
    from generation.diffusion.content_credentials import dev_chain_create

    chain = dev_chain_create("Test museum")
    (tmp_path / "c2pa-chain.pem").write_bytes(chain.cert_pem)
    (tmp_path / "c2pa-key.pem").write_bytes(chain.key_pem)
    env.update(
        ATELIER_C2PA_CERT=str(tmp_path / "c2pa-chain.pem"),
        ATELIER_C2PA_KEY=str(tmp_path / "c2pa-key.pem"),
    )
    return env


@pytest.mark.parametrize(
    "change, complaint",
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "x" * 60}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_insecure_settings(production_env, change, complaint):
    for key, value in change.items():
        if value is None:
            production_env.pop(key)
        else:
            production_env[key] = value
    result = manage("check", env=production_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr


def test_check_deploy_finds_no_security_problem_in_production(production_env):
    result = manage("check", "--deploy", env=production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "security." not in result.stdout + result.stderr


def test_check_deploy_wants_the_museums_signing_certificate_in_production(production_env):
    production_env.pop("ATELIER_C2PA_KEY")
    result = manage("check", "--deploy", env=production_env)
    assert result.returncode != 0
    assert "atelier.E022" in result.stderr and "ATELIER_C2PA_KEY" in result.stderr


def test_check_deploy_is_clean_in_production(production_env):
    # Every warning counts: drf-spectacular reports API schema gaps here too.
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


WEB_PROCESS = r"""
import io, json, sys, wsgiref.util
from config.wsgi import application

def get(path, accept="text/html"):
    environ = {"PATH_INFO": path, "HTTP_ACCEPT": accept, "wsgi.input": io.BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    statuses = []
    body = b"".join(application(environ, lambda status, headers: statuses.append(status)))
    return int(statuses[0].split()[0])

codes = {path: get(path) for path in sys.argv[1:]}
print(json.dumps({"codes": codes, "heavy": sorted(
    m for m in ("torch", "diffusers", "transformers", "peft", "bitsandbytes") if m in sys.modules
)}))
"""


def test_the_web_process_never_imports_torch(transactional_db, redis_conn):
    paths = [
        "/",
        "/healthz",
        "/api/v1/",
        "/api/schema/",
        "/api/docs/",
        "/api/v1/jobs/",
        "/accounts/login/",
        "/curator/generation/",
        "/evaluation/",
        "/archives/",
        "/admin/login/",
    ]
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, *paths],
        cwd=ROOT,
        env=dict(worker_environment(), DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"the web process imported {report['heavy']}"
    assert all(code < 500 for code in report["codes"].values()), report["codes"]


# --- ./atelier run ------------------------------------------------------------------------


@pytest.fixture
def run_env(tmp_path):
    """A fresh install: SQLite in an empty folder and no REDIS_URL (so a private Redis)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "STATIC_ROOT"}
        and not k.startswith("DJANGO_")
    }
    env.update(ATELIER_ENV="dev", ATELIER_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    return env


def start_run(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "atelier_run", "--port", str(port), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen, marker: str, timeout: float = 150) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    pytest.fail(f"{marker!r} never appeared:\n{''.join(seen)}")


def log_in(base: str, username: str, password: str) -> bool:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/accounts/login/").read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token,
            "next": "/api/v1/jobs/",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=form, headers={"Referer": base}
    )
    with opener.open(request) as response:
        return response.url.endswith("/api/v1/jobs/") and response.status == 200


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.worker
def test_atelier_run_starts_everything_prints_logins_once_and_stops_cleanly(run_env):
    port = free_port()
    run = start_run(run_env, port, "--no-demo-data")
    output = read_until(run, "Press Ctrl-C to stop.")

    passwords = dict(
        re.findall(r"^\s+(admin|curator|archivist|expert)\s+(\S+)$", output, re.MULTILINE)
    )
    assert set(passwords) == {"admin", "curator", "archivist", "expert"}
    base = f"http://127.0.0.1:{port}"
    for label in ("Kiosk", "Curator", "Admin", "API docs", "RQ dashboard"):
        assert re.search(rf"{label}\s+{base}/", output)
    health = json.loads(urllib.request.urlopen(f"{base}/healthz").read())
    assert health["workers"] == {"default": 1, "gpu": 1}
    assert log_in(base, "curator", passwords["curator"])
    assert log_in(base, "archivist", passwords["archivist"])
    assert not log_in(base, "curator", "wrong-password")

    redis_url = re.search(r"private Redis at (\S+)", output).group(1)
    worker_pids = [int(pid) for pid in re.findall(r"worker \S+:(\d+) on", output)]
    assert len(worker_pids) == 2
    run.send_signal(signal.SIGINT)  # Ctrl-C
    rest, _ = run.communicate(timeout=60)
    assert run.returncode == 0, rest
    assert "Atelier stopped." in rest
    assert all(gone(pid) for pid in worker_pids)
    assert not redis_answers(redis_url)

    # A second run keeps the logins and prints no password; SIGTERM stops it as well.
    again = start_run(run_env, port, "--no-demo-data")
    output = read_until(again, "Press Ctrl-C to stop.")
    assert "demo logins admin, curator, archivist, expert exist" in output
    assert not any(password in output for password in passwords.values())
    assert log_in(base, "curator", passwords["curator"])
    again.send_signal(signal.SIGTERM)
    rest, _ = again.communicate(timeout=60)
    assert again.returncode == 0, rest


S3_PROBE = r"""
import django, json
django.setup()
from django.core.files.storage import storages
s = storages["default"]
print(json.dumps({"class": type(s).__name__,
  "bucket": s.bucket_name, "endpoint": s.endpoint_url, "overwrite": s.file_overwrite}))
"""


def test_s3_storage_is_configured_from_the_environment(tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        ATELIER_VAR_DIR=str(tmp_path),
        ATELIER_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="museum-files",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
    )
    probe = [sys.executable, "-c", S3_PROBE]
    result = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "class": "S3Storage",
        "bucket": "museum-files",
        "endpoint": "http://127.0.0.1:9000",
        "overwrite": False,
    }
    del env["AWS_STORAGE_BUCKET_NAME"]
    result = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "AWS_STORAGE_BUCKET_NAME" in result.stderr
