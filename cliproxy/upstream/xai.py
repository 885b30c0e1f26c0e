# -*- test-case-name: tests.upstream.test_xai -*-
"""xAI API keys (`xai-api-key`): the Responses API at `{base}/responses` (CLIProxyAPI's
`xai_executor*.go`).

As there: always streamed upstream (the router aggregates for non-stream clients),
`Authorization: Bearer <key>`, base `https://api.x.ai/v1` unless the entry names one, and
the fields xAI refuses or that would bind the call to server-side state dropped
(`previous_response_id`, `prompt_cache_retention`, `safety_identifier`,
`stream_options`). A `prompt_cache_key` is kept and also sent as `x-grok-conv-id`, which
is how xAI routes a conversation to its prompt cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy.config.model import XAI_BASE_URL
from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.headers import HeaderMap

__all__ = ["XAIExecutor"]

_DROPPED = ("previous_response_id", "prompt_cache_retention", "safety_identifier", "stream_options")


class XAIExecutor(Executor):
    """POST {base}/responses with `stream: true` and the key as bearer."""

    provider = "xai"
    format = Format.OPENAI_RESPONSES
    always_streams = True
    kinds = ("xai-api-key",)

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
        self._check_action(action, ("generate", "models"), self.provider)
        base = base_url(cred, XAI_BASE_URL)
        h = HeaderMap()
        h["Content-Type"] = "application/json"
        h["Authorization"] = f"Bearer {cred.api_key}"
        if action == "models":
            self._accept(h, False)
            return UpstreamCall(
                "GET", f"{base}/models", self._custom(h, cred), b"", False, self.provider, action
            )
        payload = {k: v for k, v in body.items() if k not in _DROPPED}
        payload["model"] = model
        payload["stream"] = True
        session = payload.get("prompt_cache_key")
        if isinstance(session, str) and session.strip():
            h["x-grok-conv-id"] = session.strip()
        self._accept(h, True)
        h["Connection"] = "Keep-Alive"
        return UpstreamCall(
            "POST",
            f"{base}/responses",
            self._custom(h, cred),
            json_bytes(payload),
            True,
            self.provider,
            action,
        )
