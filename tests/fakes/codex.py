"""ChatGPT Codex backend: `FakeCodex` (core.md §2.5).

Route: `POST /backend-api/codex/responses` (also bare `/responses`, for `codex-api-key`
base URLs), and `POST .../responses/compact` (one JSON answer). The body rules of the real
backend are enforced with its own 400 bodies (`{"detail": ...}`): `stream: true`,
`store: false`, `instructions` present, `input` a list, and no sampling or size parameters.
By default `response.completed` carries an empty `output`, like the real backend, so the
proxy must rebuild it from `response.output_item.done` events. Credential:
`Authorization: Bearer`.
"""

from __future__ import annotations

import re
import time

from tests.fakes.base import ModelFake
from tests.fakes.openai import openai_error, openai_error_reply, response_events, responses_ask
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply
from tests.fakes.server import bearer
from tests.fakes.turn import Ask, Turn


def codex_usage_limit_error(resets_in_seconds: int = 60, plan_type: str = "plus", now=None):
    """The 429 body Codex sends when a plan's usage limit is reached."""
    now = int(now if now is not None else time.time())
    return {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": plan_type,
            "resets_at": now + resets_in_seconds,
            "resets_in_seconds": resets_in_seconds,
        }
    }


def codex_usage_limit_reply(resets_in_seconds: int = 60, plan_type: str = "plus", now=None):
    return Reply(429, json=codex_usage_limit_error(resets_in_seconds, plan_type, now))


class FakeCodex(ModelFake):
    """A fake `chatgpt.com/backend-api/codex`.

    Attributes:
        empty_completed_output: send `output: []` in `response.completed` (default True).
    """

    name = "fake-codex"
    default_models = ("gpt-5.4", "gpt-5.4-mini", "gpt-5.5")
    generation_path = re.compile(r"(?:/backend-api/codex)?/responses")

    def __init__(self, keys=None, clock=None, reactor=None, models=None) -> None:
        self.empty_completed_output = True
        super().__init__(keys=keys, clock=clock, reactor=reactor, models=models)

    def install_builtins(self) -> None:
        self.builtin("POST", self.generation_path.pattern, self._responses)
        self.builtin("POST", self.generation_path.pattern + "/compact", self._compact)

    def credential(self, rec: RecordedRequest) -> str | None:
        return bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return openai_error_reply(
            401, "Your authentication token is invalid.", code="token_invalidated"
        )

    def not_found(self, rec: RecordedRequest) -> Reply:
        return Reply(404, json={"detail": "Not Found"})

    def error_reply(self, status, message=None, retry_after=None) -> Reply:
        return Reply(status, json=openai_error(status, message), retry_after=retry_after)

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        ask = responses_ask(rec.json)
        ask.stream = True
        return ask

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        rid = turn.id or f"resp_fake{len(self.requests):02d}"
        events = response_events(turn, ask.model, rid, self.empty_completed_output)
        return Reply(sse=events)

    def _responses(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json
        if not isinstance(body, dict):
            return Reply(400, json={"detail": "Invalid JSON body"})
        if body.get("stream") is not True:
            return Reply(400, json={"detail": "Stream must be set to true"})
        if not body.get("model"):
            return Reply(400, json={"detail": "Missing model"})
        broken = codex_body_violation(body)
        if broken is not None:
            return Reply(400, json={"detail": broken})
        return self.answer(rec)

    def _compact(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json
        if not isinstance(body, dict) or not body.get("model"):
            return Reply(400, json={"detail": "Missing model"})
        if "stream" in body:
            return Reply(400, json={"detail": "Unsupported parameter: stream"})
        if not isinstance(body.get("instructions"), str):
            return Reply(400, json={"detail": "Instructions are required"})
        item = {"type": "compaction", "encrypted_content": "enc-fake"}
        return Reply(
            200, json={"id": "resp_compact", "object": "response.compaction", "output": [item]}
        )


#: parameters the ChatGPT backend refuses (it answers `Unsupported parameter: <name>`)
CODEX_UNSUPPORTED = (
    "max_output_tokens",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "context_management",
    "previous_response_id",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
)


def codex_body_violation(body: dict) -> str | None:
    """The backend's 400 `detail` for a body it refuses, else None."""
    if body.get("store") is not False:
        return "Store must be set to false"
    if not isinstance(body.get("instructions"), str):
        return "Instructions are required"
    if not isinstance(body.get("input"), list):
        return "Input must be a list"
    for name in CODEX_UNSUPPORTED:
        if name in body:
            return f"Unsupported parameter: {name}"
    for index, item in enumerate(body["input"]):
        if isinstance(item, dict) and item.get("role") == "system":
            return "System messages are not allowed"
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, str) and len(item_id) > 64:
            return (
                f"Invalid 'input[{index}].id': string too long. Expected a string with "
                f"maximum length 64, but got a string with length {len(item_id)} instead."
            )
    return None
