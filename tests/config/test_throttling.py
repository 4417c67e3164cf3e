"""API throttles and the login lock-out, through the live server, its database and Redis."""

from __future__ import annotations

import re

import pytest
import redis
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def low_rates(monkeypatch):
    # DRF reads the rates into the throttle class when it is imported: patch them there.
    rates = {"anon": "3/minute", "user": "5/minute", "expensive": "2/hour"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return rates


def assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("application/json")
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= 3600
    detail = response.json()["detail"]
    assert detail.startswith("Request was throttled.")
    assert re.search(r"available in \d+ seconds", detail)


def test_anonymous_requests_past_the_rate_get_429_with_retry_after(live_server, low_rates):
    url = f"{live_server.url}/api/v1/"
    assert [requests.get(url, timeout=60).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(requests.get(url, timeout=60))
    # The counters are in the shared Redis cache, where every web process sees them.
    cache = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert cache.keys("*throttle_anon_*")


def test_each_user_has_an_own_budget(live_server, low_rates):
    first = Token.objects.create(user=make_user("first")).key
    second = Token.objects.create(user=make_user("second")).key
    url = f"{live_server.url}/api/v1/jobs/"

    def get(token: str) -> int:
        return requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=60)

    assert [get(first).status_code for _ in range(5)] == [200] * 5
    assert_throttled(get(first))
    assert get(second).status_code == 200  # not the same budget


@pytest.fixture
def default_base_model(db, tmp_path):
    """A registered default base model: requests queue (no worker runs them here)."""
    from generation.models import BaseModel

    return BaseModel.objects.create(
        name="tiny",
        path=str(tmp_path),
        kind="diffusers",
        sha256="0" * 64,
        resolution=32,
        is_default=True,
    )


def test_queueing_gpu_work_is_limited_per_user_and_a_refused_request_creates_nothing(
    live_server, low_rates, redis_conn, default_base_model
):
    from generation.models import GenerationRequest, Sweep, TrainingRun
    from jobs.models import Job

    curator = make_user("painter", "curator")
    headers = {"Authorization": f"Token {Token.objects.create(user=curator).key}"}
    api = f"{live_server.url}/api/v1"
    low_rates["user"] = "100/minute"  # only the expensive scope is under test here

    def create_request() -> requests.Response:
        return requests.post(
            f"{api}/generation-requests/", json={"prompt": "a river"}, headers=headers, timeout=30
        )

    assert [create_request().status_code for _ in range(2)] == [201, 201]
    jobs = Job.objects.count()
    assert_throttled(create_request())
    # The budget is shared by everything that queues GPU work, and refusals write nothing.
    assert_throttled(requests.post(f"{api}/training-runs/", json={}, headers=headers, timeout=60))
    assert_throttled(requests.post(f"{api}/sweeps/", json={}, headers=headers, timeout=60))
    assert GenerationRequest.objects.count() == 2
    assert (Job.objects.count(), TrainingRun.objects.count(), Sweep.objects.count()) == (jobs, 0, 0)
    # Reading and polling are not GPU work: only the user rate applies to them.
    assert requests.get(f"{api}/generation-requests/", headers=headers, timeout=60).ok


def login(session: requests.Session, base: str, username: str, password: str, path: str):
    page = session.get(f"{base}{path}", timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        f"{base}{path}",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}{path}"},
        allow_redirects=False,
        timeout=60,
    )


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_repeated_wrong_passwords_lock_the_login_and_a_correct_one_is_then_refused(
    live_server, path
):
    make_user("amina", is_staff=True)  # password "pw-amina"
    base, limit = live_server.url, settings.AXES_FAILURE_LIMIT
    session = requests.Session()
    for _ in range(limit - 1):
        assert login(session, base, "amina", "wrong", path).status_code == 200  # form again
    locked = login(session, base, "amina", "wrong", path)
    assert locked.status_code == 429
    assert 'data-testid="locked-out"' in locked.text
    assert f"After {limit} wrong passwords in a row" in locked.text
    assert "Try again in 15 minutes" in locked.text
    assert 'class="site-header"' in locked.text  # the site's own page, not a bare message

    refused = login(requests.Session(), base, "amina", "pw-amina", path)
    assert refused.status_code == 429
    assert "sessionid" not in refused.cookies

    # Another user from the same address is not locked out.
    make_user("bilal", is_staff=True)
    assert login(requests.Session(), base, "bilal", "pw-bilal", path).status_code == 302


def test_a_successful_login_resets_the_count_and_axes_reset_lifts_a_lock(live_server):
    from django.core.management import call_command

    make_user("amina")
    base, limit = live_server.url, settings.AXES_FAILURE_LIMIT
    session = requests.Session()
    for _ in range(limit - 1):
        login(session, base, "amina", "wrong", "/accounts/login/")
    assert login(session, base, "amina", "pw-amina", "/accounts/login/").status_code == 302
    for _ in range(limit - 1):  # counting starts again after the success
        assert login(requests.Session(), base, "amina", "x", "/accounts/login/").status_code == 200

    assert login(requests.Session(), base, "amina", "x", "/accounts/login/").status_code == 429
    call_command("axes_reset")
    again = login(requests.Session(), base, "amina", "pw-amina", "/accounts/login/")
    assert again.status_code == 302


def test_the_curator_forms_share_the_apis_gpu_budget(live_server, low_rates, default_base_model):
    from generation.models import GenerationRequest

    curator = make_user("draughtsman", "curator")
    headers = {"Authorization": f"Token {Token.objects.create(user=curator).key}"}
    low_rates["user"] = "100/minute"
    ok = requests.post(
        f"{live_server.url}/api/v1/generation-requests/",
        json={"prompt": "a river"},
        headers=headers,
        timeout=30,
    )
    assert ok.status_code == 201
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, session_for(curator))
    form_url = f"{live_server.url}/curator/generation/requests/new/"

    def post_form() -> requests.Response:
        page = session.get(form_url, timeout=60)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return session.post(
            form_url,
            data={"prompt": "a pavilion", "images": "1", "csrfmiddlewaretoken": token},
            headers={"Referer": form_url},
            allow_redirects=False,
            timeout=30,
        )

    assert post_form().status_code == 302  # the second of two allowed this hour
    refused = post_form()
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "Nothing was queued" in refused.text
    assert GenerationRequest.objects.count() == 2
    # ...and the API counts the form's request against the same budget.
    assert (
        requests.post(
            f"{live_server.url}/api/v1/generation-requests/",
            json={"prompt": "a bridge"},
            headers=headers,
            timeout=30,
        ).status_code
        == 429
    )


def session_for(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key
