# -*- test-case-name: tests.upstream.test_executors -*-
"""OpenAI-compatible providers (`openai-compatibility[]`): Chat Completions at
`{base-url}/chat/completions` (core §2.8). `base-url` usually ends in `/v1`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.headers import HeaderMap

USER_AGENT = "cli-proxy-openai-compat"
#: what a text-only model gets in place of an image in a tool result
IMAGE_OMITTED = "[image omitted: unsupported by upstream]"
_IMAGE_PART_TYPES = ("image", "image_url", "input_image")


def text_only_model(cred: Credential, model: str) -> bool:
    """Whether `model` (an upstream name, else a client alias) is configured text-only.

    A name match decides; otherwise every entry offering the alias must be text-only.
    """
    model = model.strip().lower()
    if not model:
        return False
    for m in cred.models:
        if m.name.strip().lower() == model:
            return m.text_only
    aliased = [m for m in cred.models if m.alias.strip().lower() == model]
    return bool(aliased) and all(m.text_only for m in aliased)


def _is_image_part(part: object) -> bool:
    if not isinstance(part, dict):
        return False
    kind = part.get("type")
    if isinstance(kind, str) and kind.strip().lower() in _IMAGE_PART_TYPES:
        return True
    return "image_url" in part or "input_image" in part


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if _is_image_part(part):
        return IMAGE_OMITTED
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    return json.dumps(part, separators=(",", ":"), ensure_ascii=False)


def tool_results_as_text(payload: dict[str, Any]) -> None:
    """Chat `tool` messages with part arrays become one string, in place: text parts are
    kept (joined by a blank line) and each image becomes `IMAGE_OMITTED`."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return
    out = []
    for msg in messages:
        if isinstance(msg, dict) and msg.get("role") == "tool":
            content = msg.get("content")
            if isinstance(content, list):
                msg = {**msg, "content": "\n\n".join(_part_text(p) for p in content)}
            elif isinstance(content, dict):
                msg = {**msg, "content": _part_text(content)}
        out.append(msg)
    payload["messages"] = out


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
        if self.format is Format.OPENAI_CHAT and text_only_model(cred, model):
            tool_results_as_text(payload)
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
