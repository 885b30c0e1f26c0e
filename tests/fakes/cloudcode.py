"""Gemini CLI's Cloud Code backend: `FakeCloudCode` (core.md §2.2, §3.2).

Routes on `cloudcode-pa.googleapis.com`:
`POST /v1internal:generateContent | :streamGenerateContent?alt=sse | :countTokens`
with the envelope `{"model","project","request":{...}}` and answers `{"response":{...}}`;
`POST /v1internal:loadCodeAssist` and `:onboardUser` (a long-running operation polled
until `done`). For the login flow it also answers the Service Usage and Resource
Manager calls: `GET /v1/projects`, `GET /v1/projects/{p}/services/cloudaicompanion.googleapis.com`,
`POST ...:enable`. Credential: `Authorization: Bearer`.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.base import ModelFake
from tests.fakes.gemini import (
    gemini_ask,
    gemini_chunks,
    gemini_error_reply,
    gemini_response,
    gemini_stream_reply,
    stream_alt,
)
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply
from tests.fakes.server import bearer
from tests.fakes.turn import Ask, Turn

_SERVICE = "cloudaicompanion.googleapis.com"
_ONBOARD_TYPE = "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse"


def cloudcode_wrap(response: dict, trace_id: str = "fake-trace-01") -> dict:
    """The Cloud Code envelope around a Gemini response (or stream chunk)."""
    return {"response": response, "traceId": trace_id}


class FakeCloudCode(ModelFake):
    """A fake `cloudcode-pa.googleapis.com` (plus the Google project APIs a login needs).

    Attributes:
        project: what `loadCodeAssist` reports as `cloudaicompanionProject` (None: no project
            yet, so the client must onboard).
        onboard_project: the project `onboardUser` finally returns.
        onboard_pending: how many `onboardUser` polls answer `done: false` first.
        tiers: `allowedTiers` of `loadCodeAssist`.
        projects: what `GET /v1/projects` lists.
        service_enabled: project id -> whether cloudaicompanion is enabled (default True).
    """

    name = "fake-gemini-cli"
    default_models = ("gemini-2.5-pro", "gemini-2.5-flash")
    generation_path = re.compile(r"/v1internal:(?:generateContent|streamGenerateContent)")

    def __init__(self, keys=None, clock=None, reactor=None, models=None) -> None:
        self.project: str | None = "fake-project-123"
        self.onboard_project = "fake-project-123"
        self.onboard_pending = 0
        self.tiers: list[dict] = [
            {"id": "free-tier", "name": "Gemini Code Assist for individuals", "isDefault": True},
            {"id": "standard-tier", "name": "Gemini Code Assist", "isDefault": False},
        ]
        self.projects = [{"projectId": "fake-project-123", "name": "Fake Project"}]
        self.service_enabled: dict[str, bool] = {}
        super().__init__(keys=keys, clock=clock, reactor=reactor, models=models)

    def install_builtins(self) -> None:
        self.builtin(
            "POST", r"/v1internal:(?P<action>generateContent|streamGenerateContent)", self._generate
        )
        self.builtin("POST", r"/v1internal:countTokens", self._count_tokens)
        self.builtin("POST", r"/v1internal:loadCodeAssist", self._load_code_assist)
        self.builtin("POST", r"/v1internal:onboardUser", self._onboard_user)
        self.builtin("GET", r"/v1/projects", self._list_projects)
        self.builtin(
            "GET", rf"/v1/projects/(?P<p>[^/]+)/services/{re.escape(_SERVICE)}", self._service_state
        )
        self.builtin(
            "POST",
            rf"/v1/projects/(?P<p>[^/]+)/services/{re.escape(_SERVICE)}:enable",
            self._service_enable,
        )

    def credential(self, rec: RecordedRequest) -> str | None:
        return bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return gemini_error_reply(401, "Request had invalid authentication credentials.")

    def not_found(self, rec: RecordedRequest) -> Reply:
        return gemini_error_reply(404, f"Method not found: {rec.method} {rec.path}")

    def error_reply(self, status, message=None, retry_after=None) -> Reply:
        delay = f"{retry_after}s" if retry_after is not None and status == 429 else None
        return gemini_error_reply(status, message, retry_delay=delay)

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        body = rec.json if isinstance(rec.json, dict) else {}
        ask = gemini_ask(body.get("request"), str(body.get("model") or ""))
        ask.stream = "streamGenerateContent" in rec.path
        return ask

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        rid = turn.id or f"fake-response-{len(self.requests):02d}"
        if not ask.stream:
            return Reply(json=cloudcode_wrap(gemini_response(turn, ask.model, rid)))
        chunks = [cloudcode_wrap(c) for c in gemini_chunks(turn, ask.model, rid)]
        return gemini_stream_reply(chunks, stream_alt(rec))

    def _generate(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json
        if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
            return gemini_error_reply(400, "Invalid JSON payload: missing 'request'.")
        for name in ("model", "project"):
            if not body.get(name):
                return gemini_error_reply(400, f"Invalid request: '{name}' is required.")
        if not body["request"].get("contents"):
            return gemini_error_reply(400, "contents is not specified")
        return self.answer(rec)

    def _count_tokens(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json
        if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
            return gemini_error_reply(400, "Invalid JSON payload: missing 'request'.")
        return Reply(json={"totalTokens": max(1, len(rec.body) // 4)})

    def _load_code_assist(self, rec: RecordedRequest, m) -> Reply:
        out: dict[str, Any] = {"allowedTiers": self.tiers}
        default = next((t for t in self.tiers if t.get("isDefault")), None)
        if self.project:
            out["cloudaicompanionProject"] = self.project
            if default:
                out["currentTier"] = default
        return Reply(json=out)

    def _onboard_user(self, rec: RecordedRequest, m) -> Reply:
        if self.onboard_pending > 0:
            self.onboard_pending -= 1
            return Reply(json={"name": "operations/fake-onboard", "done": False})
        body = rec.json if isinstance(rec.json, dict) else {}
        project = self.onboard_project or body.get("cloudaicompanionProject")
        return Reply(
            json={
                "name": "operations/fake-onboard",
                "done": True,
                "response": {
                    "@type": _ONBOARD_TYPE,
                    "cloudaicompanionProject": {"id": project, "name": project},
                },
            }
        )

    def _list_projects(self, rec: RecordedRequest, m) -> Reply:
        return Reply(json={"projects": self.projects})

    def _service_state(self, rec: RecordedRequest, m) -> Reply:
        enabled = self.service_enabled.get(m["p"], True)
        return Reply(
            json={
                "name": f"projects/{m['p']}/services/{_SERVICE}",
                "state": "ENABLED" if enabled else "DISABLED",
            }
        )

    def _service_enable(self, rec: RecordedRequest, m) -> Reply:
        self.service_enabled[m["p"]] = True
        return Reply(json={"name": "operations/fake-enable", "done": True})
