# -*- test-case-name: tests.upstream.test_executors -*-
"""Vertex API keys (`vertex-api-key`): Gemini bodies on `/v1/publishers/google/models` (core §2.4).

Any Vertex-compatible gateway works as `base-url`. This executor serves Gemini models only;
the registry serves `vertex-api-key` entries with `VertexKeyExecutor`
(`cliproxy/upstream/vertex_key.py`), which adds Imagen models through `:predict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.upstream.base import UnsupportedAction, UpstreamCall
from cliproxy.upstream.gemini import GeminiExecutor

DEFAULT_BASE_URL = "https://aiplatform.googleapis.com"


class VertexExecutor(GeminiExecutor):
    """POST {base}/v1/publishers/google/models/{model}:{action} with `x-goog-api-key`."""

    provider = "vertex"
    kinds = ("vertex-api-key",)
    default_base_url = DEFAULT_BASE_URL

    def _models_path(self) -> str:
        return "/v1/publishers/google/models"

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
        if "imagen" in model.lower() and action != "models":
            raise UnsupportedAction(
                f"Imagen model {model!r} needs Vertex :predict, which cliproxy does not offer yet"
            )
        return super().build(
            cred,
            model=model,
            body=body,
            stream=stream,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
