"""Fixtures shared by the whole suite: real Redis, real RQ worker processes, users."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url_of_test_db() -> str:
    """The URL of the test database pytest-django created, for worker subprocesses."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host, port = conf.get("HOST") or "127.0.0.1", conf.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{conf['NAME']}"


@pytest.fixture
def redis_conn():
    """The real Redis of the suite, emptied before the test."""
    import django_rq

    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture(autouse=True)
def empty_shared_cache():
    """Throttle counters and cached responses live in the shared Redis cache: each test starts
    with none, so one test's requests never count against the next."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def default_language():
    """The test client runs requests in this thread and LocaleMiddleware leaves their language
    active: a zh or ug page must not change the language of the next test's rendering."""
    from django.utils import translation

    yield
    translation.deactivate()


def worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_of_test_db(),
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        ATELIER_ENV="test",
        PYTHONPATH=str(ROOT),
        # The test process and the worker share a few cores: one torch thread each avoids
        # oversubscription that makes tiny-model steps 50x slower on a busy 2-core machine.
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    return env


class WorkerProcess:
    """A real `manage.py atelier_worker` process on the given queues."""

    def __init__(self, queues: tuple[str, ...] = ("default", "gpu"), burst: bool = False):
        self.queues, self.burst = queues, burst
        self.process: subprocess.Popen | None = None
        self.log = Path(settings.MEDIA_ROOT).parent / f"worker-{os.getpid()}-{time.time_ns()}.log"

    def start(self) -> WorkerProcess:
        args = [sys.executable, str(ROOT / "manage.py"), "atelier_worker", *self.queues]
        if self.burst:
            args.append("--burst")
        self._log_handle = open(self.log, "wb")
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=worker_environment(),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log_handle", None):
            self._log_handle.close()


@pytest.fixture
def start_worker(transactional_db, redis_conn):
    """Start real worker processes: ``start_worker(("gpu",))``; all are stopped afterwards."""
    workers: list[WorkerProcess] = []

    def start(queues: tuple[str, ...] = ("default", "gpu"), burst: bool = False) -> WorkerProcess:
        worker = WorkerProcess(queues, burst).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float = 180.0, interval: float = 0.1, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``.

    The timeout is a ceiling for a stuck test, not a speed check: a worker process starting
    Django and torch on a loaded 2-core CI machine took over a minute once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(message or f"condition not met within {timeout}s")


def make_user(username: str, *groups: str, **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def curator(db):
    return make_user("curator1", "curator")


@pytest.fixture
def expert(db):
    return make_user("expert1", "expert")


@pytest.fixture
def staff(db):
    return make_user("staff1", is_staff=True, is_superuser=True)


CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as ARCHITECTURE.md says: never a browser of Playwright's own; no background
# networking (this machine's closed network refuses those connections).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# The ceiling on every Playwright wait in the suite (actions, wait_for_*, navigations, expect):
# for a stuck page, not a speed check. 20 s ceilings (Playwright: 30 s, 5 s for expect) ran out on a
# loaded 2-core CI machine shared by two test processes, an RQ worker and Chromium.
BROWSER_TIMEOUT_MS = 60_000


def new_context(browser, **options):
    """``browser.new_context(**options)`` with the suite's wait ceiling."""
    context = browser.new_context(**options)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    return context


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per browser-test module."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def local_only_page(context, live_server, lang: str = "en"):
    """A page in ``lang`` that may load only from the live server: every other request is
    aborted and kept in ``page.blocked`` (the pages must never reach a CDN)."""
    context.add_cookies([{"name": "django_language", "value": lang, "url": live_server.url}])
    blocked: list[str] = []

    def route(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.blocked = blocked
    return page


# Fixtures through which a test reaches the database or Redis (their closures include these).
SERVICE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "redis_conn",
    }
)


def uses_services(item: pytest.Item) -> bool:
    """Whether ``item`` reads or writes the database or the suite's Redis (the autouse cache
    clearing aside, which every test does)."""
    return bool(item.get_closest_marker("django_db")) or bool(
        SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(config, items):
    # ATELIER_SERVICE_TESTS_ONLY=1 (.ci/run's PostgreSQL pass): only the tests whose outcome
    # can depend on the database or Redis; the rest ran, identically, in the first pass.
    if os.environ.get("ATELIER_SERVICE_TESTS_ONLY") == "1":
        kept, dropped = [], []
        for item in items:
            (kept if uses_services(item) else dropped).append(item)
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    # The minutes-long tests first: pytest-xdist hands out work in collection order, so they
    # start while the other process works through the short ones, instead of running alone
    # at the end (the suite took 700 s with them last on two cores).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
