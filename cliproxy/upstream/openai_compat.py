# -*- test-case-name: tests.upstream.test_executors -*-
"""OpenAI-compatible providers (`openai-compatibility[]`): Chat Completions at
`{base-url}/chat/completions` (core §2.8). `base-url` usually ends in `/v1`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.headers import HeaderMap

USER_AGENT = "cli-proxy-openai-compat"


class OpenAICompatExecutor(Executor):
    """POST {base}/chat/completions with `Authorization: Bearer <key>` (when there is a key).

    Streams force `stream_options.include_usage: true` so usage arrives in the last chunk.
    """

    provider = "openai-compatibility"
    format = Format.OPENAI_CHAT
    kinds = ("openai-compatibility",)
    path = "/chat/completions"

    def build(
        self,
        cred: Credential,
        *,
        model: str,
        body: dict[str, Any],
        stream: bool,
        action: str = "generate",
        client_headers: Mapping[str, str] | None = None,
        alt: str | None = None,
    ) -> UpstreamCall:
        # count_tokens is computed locally for OpenAI-compatible providers (core §2.8)
        self._check_action(action, ("generate", "models"), cred.provider or self.provider)
        base = base_url(cred, None)
        h = HeaderMap()
        h["Content-Type"] = "application/json"
        if cred.api_key:
            h["Authorization"] = f"Bearer {cred.api_key}"
        h["User-Agent"] = USER_AGENT
        provider = cred.provider or self.provider
        if action == "models":
            self._accept(h, False)
            return UpstreamCall(
                "GET", f"{base}/models", self._custom(h, cred), b"", False, provider, action
            )

        payload = dict(body)
        payload["model"] = model
        self._fix_stream_fields(payload, stream)
        self._accept(h, stream)
        if stream:
            h["Cache-Control"] = "no-cache"
        return UpstreamCall(
            "POST",
            f"{base}{self.path}",
            self._custom(h, cred),
            json_bytes(payload),
            stream,
            provider,
            action,
        )

    @staticmethod
    def _fix_stream_fields(payload: dict[str, Any], stream: bool) -> None:
        if stream:
            payload["stream"] = True
            options = payload.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            payload["stream_options"] = options
        else:
            payload["stream"] = False
            payload.pop("stream_options", None)


class OpenAIResponsesCompatExecutor(OpenAICompatExecutor):
    """The same providers spoken to through `{base}/responses` (OpenAI Responses format).

    Not picked by `executor_for` today; for entries that serve the Responses API.
    """

    format = Format.OPENAI_RESPONSES
    path = "/responses"

    @staticmethod
    def _fix_stream_fields(payload: dict[str, Any], stream: bool) -> None:
        payload["stream"] = bool(stream)
        payload.pop("stream_options", None)
