# -*- test-case-name: tests.upstream.test_executors -*-
"""Gemini API keys (`gemini-api-key`): generateContent on `/v1beta/models/{model}` (core §2.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes, path_segment
from cliproxy.upstream.headers import HeaderMap

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

#: removed before countTokens (the endpoint rejects them)
_NOT_COUNTED = ("tools", "generationConfig", "safetySettings")
#: our own bookkeeping fields that Google would reject
_NOT_SENT = ("model", "session_id")


def _query(stream: bool, alt: str | None) -> str:
    if alt:
        return f"?$alt={alt}"
    return "?alt=sse" if stream else ""


class GeminiExecutor(Executor):
    """POST {base}/v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens."""

    provider = "gemini"
    format = Format.GEMINI
    kinds = ("gemini-api-key",)
    default_base_url = DEFAULT_BASE_URL

    def _models_path(self) -> str:
        return "/v1beta/models"

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
        self._check_action(action, ("generate", "count_tokens", "models"), self.provider)
        base = base_url(cred, self.default_base_url)
        h = HeaderMap()
        h["Content-Type"] = "application/json"
        h["x-goog-api-key"] = cred.api_key
        if action == "models":
            self._accept(h, False)
            url = f"{base}{self._models_path()}"
            return UpstreamCall(
                "GET", url, self._custom(h, cred), b"", False, self.provider, action
            )

        model = model.removeprefix("models/")
        payload = {k: v for k, v in body.items() if k not in _NOT_SENT}
        if action == "count_tokens":
            stream = False
            for name in _NOT_COUNTED:
                payload.pop(name, None)
            method, query = "countTokens", ""
        elif stream:
            method, query = "streamGenerateContent", _query(True, alt)
        else:
            method, query = "generateContent", _query(False, alt)
        url = f"{base}{self._models_path()}/{path_segment(model)}:{method}{query}"
        self._accept(h, stream)
        if not stream:
            h.pop("Accept")  # Google answers JSON anyway; keep the request minimal
        return UpstreamCall(
            "POST", url, self._custom(h, cred), json_bytes(payload), stream, self.provider, action
        )
