"""LLM prompt drafting against a local fake OpenAI-compatible server (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generation.diffusion.prompting import (
    LlmEndpoint,
    PromptDraftError,
    PromptDraftRefused,
    draft_prompt,
)
from tests.conftest import wait_for

DRAFT = '"Misty green mountains above a winding river, ink wash"'


class FakeChat(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeChat.seen.append((self.path, self.headers.get("Authorization"), body))
        if FakeChat.mode == "slow":
            time.sleep(1.5)
        if FakeChat.mode == "error":
            self._send(500, {"error": {"message": "model overloaded"}})
        elif FakeChat.mode == "refuse":
            self._send(
                200,
                {
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "refusal": "I can't help with that.",
                            }
                        }
                    ]
                },
            )
        elif FakeChat.mode == "garbage":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not json")
        else:
            self._send(
                200,
                {
                    "model": "fake-1",
                    "choices": [
                        {
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": DRAFT,
                            },
                        }
                    ],
                },
            )

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def fake_llm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeChat.mode, FakeChat.seen = "ok", []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def endpoint(url, timeout=5.0):
    return LlmEndpoint(url=url, model="fake-1", key="secret", timeout=timeout)


def test_a_draft_comes_back_trimmed(fake_llm):
    draft = draft_prompt(endpoint(fake_llm), "山高水长")
    assert draft.text == "Misty green mountains above a winding river, ink wash"
    path, auth, body = FakeChat.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert body["model"] == "fake-1" and body["messages"][1]["content"] == "山高水长"


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("error", PromptDraftError, "HTTP 500: model overloaded"),
        ("refuse", PromptDraftRefused, "declined: I can't help with that."),
        ("garbage", PromptDraftError, "not JSON"),
        ("slow", PromptDraftError, "did not answer within 0.3 s"),
    ],
)
def test_failures_are_clear_messages(fake_llm, mode, error, words):
    FakeChat.mode = mode
    with pytest.raises(error, match=words.replace("(", r"\(")):
        draft_prompt(endpoint(fake_llm, timeout=0.3), "passage")


def test_off_and_unreachable():
    with pytest.raises(PromptDraftError, match="off"):
        draft_prompt(LlmEndpoint(url="", model=""), "x")
    with pytest.raises(PromptDraftError, match="cannot be reached"):
        draft_prompt(endpoint("http://127.0.0.1:9/v1", timeout=1), "x")


@pytest.mark.worker
def test_the_page_queues_a_draft_job_that_keeps_the_draft_or_says_why_not(
    start_worker, client, curator, fake_llm, settings, monkeypatch
):
    from rest_framework.test import APIClient

    from heritage.services import passage_create
    from jobs.models import Job

    client.force_login(curator)
    passage = passage_create(source_work="Gazetteer", original_text="山高水长")
    url = f"/curator/generation/passages/{passage.pk}/draft/"
    back = "/curator/generation/requests/new/"
    # Drafting off: said at once, nothing queued.
    settings.ATELIER_LLM_URL = ""
    page = client.post(url, {"next": back}, follow=True)
    assert page.status_code == 200 and "Prompt drafting is off" in page.content.decode()
    assert not Job.objects.exists()

    # The worker reads the endpoint from its environment, the web side from settings.
    for name, value in (("URL", fake_llm), ("MODEL", "fake-1"), ("TIMEOUT", "0.3")):
        monkeypatch.setenv(f"ATELIER_LLM_{name}", value)
    settings.ATELIER_LLM_URL, settings.ATELIER_LLM_MODEL = fake_llm, "fake-1"
    worker = start_worker(("default",))

    def draft_job(mode: str) -> Job:
        FakeChat.mode = mode
        response = client.post(url, {"next": back})
        assert response.status_code == 302  # to the job's page, which links back
        job = Job.objects.get(kind="generation.prompt_draft", status__in=["queued", "running"])
        assert response["Location"].startswith(f"/jobs/{job.pk}/?next=")
        page = client.get(response["Location"]).content.decode()
        assert "generation.prompt_draft" in page and f'hx-get="/jobs/{job.pk}/status/' in page
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, message=worker.output())
        return Job.objects.get(pk=job.pk)

    slow = draft_job("slow")
    assert slow.status == "failed" and "did not answer within 0.3 s" in slow.error
    fragment = client.get(f"/jobs/{slow.pk}/status/?next={back}").content.decode()
    assert "did not answer within 0.3 s" in fragment and "hx-get" not in fragment
    assert f'href="{back}"' in fragment
    passage.refresh_from_db()
    assert passage.prompt_draft == "" and passage.approved_prompt == ""

    ok = draft_job("ok")
    assert ok.status == "succeeded" and ok.result["prompt_draft"].startswith("Misty green")
    assert "Draft kept on the passage" in client.get(f"/jobs/{ok.pk}/").content.decode()
    passage.refresh_from_db()
    assert passage.prompt_draft.startswith("Misty green mountains")
    assert passage.approved_prompt == ""  # the curator approves, not the model

    api = APIClient()
    api.force_authenticate(curator)
    FakeChat.mode = "refuse"
    response = api.post(f"/api/v1/passages/{passage.pk}/draft-prompt/")
    assert response.status_code == 202
    body = response.json()
    assert body["passage"] == passage.pk and body["job_url"] == f"/api/v1/jobs/{body['job']}/"
    refused = wait_for(
        lambda: (
            (job := api.get(body["job_url"]).json())["status"] in ("failed", "succeeded") and job
        ),
        message=worker.output(),
    )
    assert refused["status"] == "failed" and "declined" in refused["error"]
    passage.refresh_from_db()
    assert passage.prompt_draft.startswith("Misty green mountains")  # kept: nothing changed
