"""Draft a modern, visual prompt from a classical gazetteer passage with an LLM (no Django).

001_465742bc70709bdb modernised gazetteer passages with a language model before generating.
This is an optional client for any OpenAI-compatible chat endpoint (``POST .../chat/completions``);
the curator always edits and approves the draft. Failures never raise anything but
``PromptDraftError``, whose message is written for the curator (timeouts, HTTP errors, refusals).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You help a museum turn passages of a classical Chinese local gazetteer into prompts for a "
    "Stable Diffusion model of traditional landscape painting. Answer with one English prompt "
    "of at most 60 words: a modern, concrete, visual paraphrase (scenery, objects, season, "
    "light, composition). No explanations, no quotation marks."
)


class PromptDraftError(Exception):
    """The draft could not be made; the message says why, for the curator."""


class PromptDraftRefused(PromptDraftError):
    """The model declined to answer."""


@dataclass(frozen=True)
class LlmEndpoint:
    url: str
    model: str
    key: str = ""
    timeout: float = 20.0

    @property
    def chat_url(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


@dataclass(frozen=True)
class PromptDraft:
    text: str
    model: str


def passage_message(original_text: str, modern_paraphrase: str = "", translation: str = "") -> str:
    parts = [f"Classical passage:\n{original_text.strip()}"]
    if modern_paraphrase.strip():
        parts.append(f"Modern Chinese paraphrase:\n{modern_paraphrase.strip()}")
    if translation.strip():
        parts.append(f"English translation:\n{translation.strip()}")
    return "\n\n".join(parts)


def draft_prompt(endpoint: LlmEndpoint, passage_text: str) -> PromptDraft:
    """Ask the endpoint for a prompt; raise PromptDraftError with a readable message."""
    if not endpoint.url:
        raise PromptDraftError("Prompt drafting is off: no language-model endpoint is configured.")
    body = {
        "model": endpoint.model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": passage_text},
        ],
        "temperature": 0.3,
        "max_tokens": 200,
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.key:
        headers["Authorization"] = f"Bearer {endpoint.key}"
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's setting
        endpoint.chat_url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout) as response:  # noqa: S310
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        raise PromptDraftError(
            f"The language model answered HTTP {exc.code}{': ' + detail if detail else ''}."
        ) from exc
    except TimeoutError as exc:
        raise PromptDraftError(
            f"The language model did not answer within {endpoint.timeout:g} s; try again later "
            "or write the prompt yourself."
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise PromptDraftError(
                f"The language model did not answer within {endpoint.timeout:g} s."
            ) from exc
        raise PromptDraftError(f"The language model cannot be reached: {exc.reason}.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PromptDraftError("The language model sent an answer that is not JSON.") from exc
    return _draft_from(payload, endpoint.model)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read().decode("utf-8"))
        error = payload.get("error", payload)
        return str(error.get("message", "") if isinstance(error, dict) else error)[:300]
    except Exception:
        return ""


def _draft_from(payload: dict, model: str) -> PromptDraft:
    try:
        choice = payload["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise PromptDraftError("The language model's answer has no choices.") from exc
    if message.get("refusal"):
        raise PromptDraftRefused(f"The language model declined: {message['refusal']}")
    if choice.get("finish_reason") == "content_filter":
        raise PromptDraftRefused("The language model declined (its content filter stopped it).")
    text = (message.get("content") or "").strip().strip('"').strip()
    if not text:
        raise PromptDraftRefused("The language model returned an empty draft.")
    return PromptDraft(text=text, model=str(payload.get("model") or model))
