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


@pytest.mark.django_db
def test_the_page_keeps_the_draft_or_shows_why_not(client, curator, fake_llm, settings):
    from heritage.services import passage_create

    client.force_login(curator)
    passage = passage_create(source_work="Gazetteer", original_text="山高水长")
    url = f"/curator/generation/passages/{passage.pk}/draft/"
    settings.ATELIER_LLM_URL = ""
    page = client.post(url, {"next": "/curator/generation/requests/new/"}, follow=True)
    assert page.status_code == 200 and "Prompt drafting is off" in page.content.decode()

    settings.ATELIER_LLM_URL, settings.ATELIER_LLM_MODEL = fake_llm, "fake-1"
    settings.ATELIER_LLM_TIMEOUT = 0.3
    FakeChat.mode = "slow"
    page = client.post(url, follow=True)
    assert page.status_code == 200 and "did not answer within 0.3 s" in page.content.decode()
    passage.refresh_from_db()
    assert passage.prompt_draft == "" and passage.approved_prompt == ""

    FakeChat.mode = "ok"
    page = client.post(url, follow=True)
    assert "Draft kept on the passage" in page.content.decode()
    passage.refresh_from_db()
    assert passage.prompt_draft.startswith("Misty green mountains")
    assert passage.approved_prompt == ""  # the curator approves, not the model

    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(curator)
    FakeChat.mode = "refuse"
    response = api.post(f"/api/v1/passages/{passage.pk}/draft-prompt/")
    assert response.status_code == 422 and response.json()["refused"] is True
