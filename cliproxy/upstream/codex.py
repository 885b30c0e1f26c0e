# -*- test-case-name: tests.upstream.test_executors -*-
"""Codex API keys (`codex-api-key`): the Responses API at `{base}/responses` (core §2.5).

The upstream is always streamed; the router reads the SSE to the end for non-stream
clients. A key entry must name its `base-url` (config loading drops it otherwise).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.formats.requests import codex_fixups
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.codex_items import sanitize_input_ids
from cliproxy.upstream.headers import HeaderMap, lookup

DEFAULT_USER_AGENT = (
    "codex-tui/0.135.0 (Mac OS 26.5.0; arm64) iTerm.app/3.6.10 (codex-tui; 0.135.0)"
)
#: copied from the client when present, never invented
CLIENT_ONLY_HEADERS = (
    "Version",
    "X-OpenAI-Internal-Codex-Responses-Lite",
    "X-Codex-Turn-Metadata",
    "X-Client-Request-Id",
    "X-Codex-Beta-Features",
)
#: fields the Codex backend rejects or that would tie the call to server-side state
_DROPPED = ("previous_response_id", "prompt_cache_retention", "safety_identifier", "stream_options")
IMAGE_TOOL = {"type": "image_generation", "output_format": "png"}


#: Codex's lighter request mode: no built-in tools, no parallel tool calls
RESPONSES_LITE_HEADER = "X-OpenAI-Internal-Codex-Responses-Lite"
#: where Codex Desktop mirrors that header (it is WebSocket-only) in the body
_LITE_METADATA = "ws_request_header_x_openai_internal_codex_responses_lite"


def is_responses_lite(payload: Mapping[str, Any], client_headers: Mapping[str, str]) -> bool:
    """The client asked for Codex's responses-lite mode (header or client_metadata)."""
    if (lookup(client_headers, RESPONSES_LITE_HEADER) or "").strip().lower() == "true":
        return True
    metadata = payload.get("client_metadata")
    flag = metadata.get(_LITE_METADATA) if isinstance(metadata, dict) else None
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def _is_image_tool(tool: object) -> bool:
    """The built-in image tool, or Codex's own image function (flat or in its namespace)."""
    if not isinstance(tool, dict):
        return False
    kind, name = tool.get("type"), tool.get("name")
    if kind == "image_generation":
        return True
    if kind == "function":
        return name == "image_gen.imagegen"
    if kind == "namespace" and name == "image_gen" and isinstance(tool.get("tools"), list):
        return any(
            isinstance(t, dict) and t.get("type") == "function" and t.get("name") == "imagegen"
            for t in tool["tools"]
        )
    return False


class CodexExecutor(Executor):
    """POST {base}/responses, always `stream: true`, `store: false`.

    Args:
        user_agent: `codex-header-defaults.user-agent`; a client's own UA still wins.
        image_generation: append the `image_generation` tool (a credential option
            `image-generation: false` turns it off per key).
    """

    provider = "codex"
    format = Format.OPENAI_RESPONSES
    always_streams = True
    kinds = ("codex-api-key",)

    def __init__(self, *, user_agent: str | None = None, image_generation: bool = True) -> None:
        self.user_agent = user_agent or DEFAULT_USER_AGENT
        self.image_generation = image_generation

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
        # count_tokens is computed locally for Codex (core §2.5)
        self._check_action(action, ("generate", "compact"), self.provider)
        client_headers = client_headers or {}
        base = base_url(cred, None)
        if action == "compact":
            return self._compact(cred, base, model, body, client_headers)

        # every client format ends here, so this is where the backend's body rules apply
        payload = codex_fixups({k: v for k, v in body.items() if k not in _DROPPED})
        payload = sanitize_input_ids(payload)
        payload["model"] = model
        lite = is_responses_lite(payload, client_headers)
        if not lite and self._wants_image_tool(cred, model):
            tools = list(payload.get("tools") or [])
            if not any(_is_image_tool(t) for t in tools):
                tools.append(dict(IMAGE_TOOL))
            payload["tools"] = tools
        if lite:
            payload["parallel_tool_calls"] = False
        elif "parallel_tool_calls" in payload and not payload.get("tools"):
            del payload["parallel_tool_calls"]  # the backend refuses it without tools

        h = self._headers(cred, payload, client_headers, stream=True)
        return UpstreamCall(
            "POST",
            f"{base}/responses",
            self._custom(h, cred),
            json_bytes(payload),
            True,
            self.provider,
            action,
        )

    def _compact(
        self,
        cred: Credential,
        base: str,
        model: str,
        body: dict[str, Any],
        client_headers: Mapping[str, str],
    ) -> UpstreamCall:
        """`/responses/compact`: one JSON answer, the body otherwise as the client sent it."""
        payload = {k: v for k, v in body.items() if k != "stream"}
        payload["model"] = model
        if not isinstance(payload.get("instructions"), str):
            payload["instructions"] = ""
        h = self._headers(cred, payload, client_headers, stream=False)
        return UpstreamCall(
            "POST",
            f"{base}/responses/compact",
            self._custom(h, cred),
            json_bytes(payload),
            False,
            self.provider,
            "compact",
        )

    def _headers(
        self,
        cred: Credential,
        payload: dict[str, Any],
        client_headers: Mapping[str, str],
        *,
        stream: bool,
    ) -> HeaderMap:
        h = HeaderMap()
        h["Content-Type"] = "application/json"
        h["Authorization"] = f"Bearer {cred.api_key}"
        self._accept(h, stream)
        for name in CLIENT_ONLY_HEADERS:
            value = lookup(client_headers, name)
            if value:
                h[name] = value
        ua = lookup(client_headers, "user-agent") or self.user_agent
        h["User-Agent"] = ua
        session = lookup(client_headers, "session_id") or payload.get("prompt_cache_key")
        if not session and "Mac OS" in ua:
            session = str(uuid.uuid4())
        if session:
            h["Session_id"] = str(session)
        return h

    def _wants_image_tool(self, cred: Credential, model: str) -> bool:
        if not self.image_generation or model.endswith("spark"):
            return False
        return cred.option("image-generation", True) not in (False, "false")
