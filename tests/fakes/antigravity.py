"""Antigravity's Cloud Code backend (`daily-cloudcode-pa.googleapis.com`): `FakeAntigravity`.

The Gemini CLI fake's routes and envelope, with what Antigravity's clients must send:
`User-Agent: antigravity/...` at version 2.9.0 or later (older clients are refused with
400 FAILED_PRECONDITION), and in the body `userAgent: "antigravity"`, a `requestType`,
a `requestId` and `project` (400 INVALID_ARGUMENT naming the field otherwise).
`loadCodeAssist` answers only for `metadata.ideType: ANTIGRAVITY`.
"""

from __future__ import annotations

import re

from tests.fakes.cloudcode import FakeCloudCode
from tests.fakes.gemini import gemini_error_reply
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply

_UA = re.compile(r"antigravity/(?:hub/)?(\d+)\.(\d+)\.(\d+)")
MIN_VERSION = (2, 9, 0)


class FakeAntigravity(FakeCloudCode):
    name = "fake-antigravity"
    default_models = ("gemini-3-flash", "claude-sonnet-4-6", "gemini-3.1-pro-low")

    def install_builtins(self) -> None:
        # the first matching route answers: these come before Cloud Code's own
        self.builtin(
            "POST", r"/v1internal:(?P<action>generateContent|streamGenerateContent)", self._ag
        )
        self.builtin("POST", r"/v1internal:loadCodeAssist", self._ag_load)
        super().install_builtins()

    def _client_problem(self, rec: RecordedRequest) -> Reply | None:
        found = _UA.match(rec.header("user-agent") or "")
        if found is None:
            return gemini_error_reply(403, "The caller is not an Antigravity client.")
        if tuple(int(g) for g in found.groups()) < MIN_VERSION:
            return gemini_error_reply(
                400, "This version of Antigravity is no longer supported. Please update."
            )
        return None

    def _ag(self, rec: RecordedRequest, m) -> Reply:
        problem = self._client_problem(rec)
        if problem is not None:
            return problem
        body = rec.json if isinstance(rec.json, dict) else {}
        if body.get("userAgent") != "antigravity":
            return gemini_error_reply(400, "Invalid request: 'userAgent' must be 'antigravity'.")
        for name in ("requestType", "requestId"):
            if not body.get(name):
                return gemini_error_reply(400, f"Invalid request: '{name}' is required.")
        return self._generate(rec, m)

    def _ag_load(self, rec: RecordedRequest, m) -> Reply:
        problem = self._client_problem(rec)
        if problem is not None:
            return problem
        body = rec.json if isinstance(rec.json, dict) else {}
        if (body.get("metadata") or {}).get("ideType") != "ANTIGRAVITY":
            return gemini_error_reply(400, "Invalid request: metadata.ideType.")
        return self._load_code_assist(rec, m)
