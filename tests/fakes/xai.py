"""xAI's API (`api.x.ai/v1`): the OpenAI Responses API, Bearer keys only. Strict about
what xAI refuses: `previous_response_id` (no server-side state for proxied calls here),
`safety_identifier`, `prompt_cache_retention` and `stream_options` answer 400."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, openai_error_reply
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply

REFUSED = ("previous_response_id", "safety_identifier", "prompt_cache_retention", "stream_options")


class FakeXAI(FakeOpenAI):
    name = "fake-xai"
    default_models = ("grok-4.3", "grok-3-mini")

    def install_builtins(self) -> None:
        self.builtin("POST", r"/v1/responses", self._xai_responses)

    def _xai_responses(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        for name in REFUSED:
            if name in body:
                return openai_error_reply(400, f"Argument not supported: {name}")
        return self._responses(rec, m)


class FakeGrokChatProxy(FakeXAI):
    """The Grok CLI chat proxy (`cli-chat-proxy.grok.com/v1`): xAI's Responses API for OAuth
    tokens, answering only the Grok CLI (its identity headers; 403 otherwise)."""

    name = "fake-grok-chat-proxy"
    REQUIRED = {"x-xai-token-auth": "xai-grok-cli", "x-grok-client-identifier": "grok-shell"}

    def _xai_responses(self, rec: RecordedRequest, m) -> Reply:
        for header, value in self.REQUIRED.items():
            if rec.header(header) != value:
                return openai_error_reply(403, f"{header} is missing or not a Grok CLI client")
        return super()._xai_responses(rec, m)
