# -*- test-case-name: tests.test_routing -*-
"""The bodies routing translates: the client's request into the provider's, and a whole
provider answer back into the client's (pure: no Twisted, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from cliproxy.formats import Format
from cliproxy.formats.requests import (
    TranslationError,
    apply_thinking,
    client_tools,
    count_tokens_request,
    estimate_tokens,
    translate_request,
)
from cliproxy.formats.responses_side import aggregate_stream, translate_response
from cliproxy.formats.sse import SSEDecoder
from cliproxy.registry import ModelSpec
from cliproxy.routing.results import ClientRequest, RouteError


def thinking_caps(spec: ModelSpec | None) -> dict[str, object] | None:
    """The catalog's thinking entry as the request translators take it (None: unchecked)."""
    if spec is None or spec.user_defined:
        return None
    t = spec.thinking
    if t is None:
        return {}
    return {
        "min": t.min,
        "max": t.max,
        "levels": t.levels,
        "zero_allowed": t.zero_allowed,
        "dynamic_allowed": t.dynamic_allowed,
        "output": spec.output,
    }


def provider_request(
    req: ClientRequest,
    provider: Format,
    *,
    model: str,
    spec: ModelSpec | None,
    thinking_suffix: str | None,
    stream: bool,
) -> dict[str, Any]:
    """The body to send `provider` for `req` (a count request for `count_tokens`).

    Raises:
        RouteError: 400, the client's body cannot be translated.
    """
    try:
        if req.action == "count_tokens":
            return count_tokens_request(req.format, provider, req.body, model=model)
        caps = thinking_caps(spec)
        body = translate_request(
            req.format, provider, req.body, model=model, stream=stream, model_caps=caps
        )
        return apply_thinking(provider, body, thinking_suffix, model_caps=caps)
    except TranslationError as e:
        raise RouteError(400, str(e), type="invalid_request_error") from e


def local_count(req: ClientRequest, provider: Format) -> bytes | None:
    """A token count estimated here, for providers without a count endpoint (None: ask)."""
    if provider in (Format.CLAUDE, Format.GEMINI):
        return None
    return count_body(req.format, estimate_tokens(req.format, req.body))


def count_body(client: Format, n: int) -> bytes:
    """A count_tokens answer in the client's shape."""
    if client is Format.GEMINI:
        return json.dumps(
            {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
        ).encode()
    return json.dumps({"input_tokens": n}).encode()


def count_answer(req: ClientRequest, provider: Format, parsed: object, raw: bytes | None) -> bytes:
    """The provider's count answer in the client's shape (its own bytes when they match)."""
    if provider == req.format and raw is not None:
        return raw
    n = 0
    if isinstance(parsed, dict):
        n = int(parsed.get("input_tokens") or parsed.get("totalTokens") or 0)
    return count_body(req.format, n)


def client_answer(req: ClientRequest, provider: Format, parsed: Any, raw: bytes | None) -> bytes:
    """A whole provider answer in the client's format (the provider's own bytes when the
    formats match and the answer was not aggregated from a stream)."""
    if provider == req.format and raw is not None:
        return raw
    names = client_tools(req.format, provider, req.body)
    out = translate_response(provider, req.format, parsed, model=req.model, tool_names=names)
    try:
        return json.dumps(out, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the upstream: \u-escape it
        return json.dumps(out).encode("ascii")


def aggregate(raw: bytes, provider: Format) -> dict[str, Any]:
    """A whole upstream stream read into the provider's non-stream answer (Codex).

    Raises:
        AggregateError: the stream carried its own failure (e.g. `response.failed`).
    """
    decoder = SSEDecoder()
    agg = aggregate_stream(provider)
    for ev in decoder.feed(raw) + decoder.close():
        agg.feed(ev)
    return agg.result()
