# -*- test-case-name: tests.formats.test_requests_tokens -*-
"""count_tokens bodies for upstreams that count, and a local estimate for those that cannot."""

from __future__ import annotations

import math

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.requests import gemini
from cliproxy.formats.requests._wire import json_text
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import Media, Text, Thinking, ToolCall, ToolResult
from cliproxy.formats.requests.translate import emit_request, parse_request, translate_request

# Fields of a Messages body that /v1/messages/count_tokens accepts and that change the count.
_CLAUDE_COUNT_KEYS = ("model", "system", "messages", "tools", "tool_choice")

# Heuristic costs (tokens). Fixed numbers keep the estimate deterministic; they are in the
# range the providers document (an OpenAI high-detail image is 765 tokens at 1024x1024).
_PER_MESSAGE = 4
_REPLY_PRIMING = 3
_PER_TOOL = 8
_MEDIA_COST = {"image": 765, "document": 1500, "audio": 500}


def count_tokens_request(src: Format, dst: Format, body: JSONObject, *, model: str) -> JSONObject:
    """The body for `dst`'s token-counting endpoint, from a client's count (or chat) request.

    Claude: a /v1/messages/count_tokens body. Gemini: a `:countTokens` body of `contents` only
    (the form every Gemini endpoint accepts; system instructions are folded in as a leading
    user turn so they are counted). OpenAI formats have no count endpoint: the translated
    request is returned, for estimate_tokens(dst, ...).
    """
    if dst is Format.CLAUDE:
        if src is Format.CLAUDE:
            if not isinstance(body, dict):
                raise TranslationError("request body must be a JSON object")
            full = dict(body, model=model)
        else:
            conv = parse_request(src, body)
            full = emit_request(Format.CLAUDE, conv, model=model, stream=False)
        return {k: full[k] for k in _CLAUDE_COUNT_KEYS if k in full}
    if dst is Format.GEMINI:
        if src is Format.GEMINI:
            if not isinstance(body, dict):
                raise TranslationError("request body must be a JSON object")
            full = gemini.unwrap(body)
        else:
            full = emit_request(Format.GEMINI, parse_request(src, body), model=model, stream=False)
        contents = [c for c in full.get("contents") or [] if isinstance(c, dict)]
        system = full.get("systemInstruction") or full.get("system_instruction")
        parts = system.get("parts") if isinstance(system, dict) else None
        if isinstance(parts, list) and parts:
            if contents and contents[0].get("role") == "user":
                contents[0] = dict(contents[0], parts=list(parts) + list(contents[0]["parts"]))
            else:
                contents.insert(0, {"role": "user", "parts": list(parts)})
        return {"contents": contents}
    return translate_request(src, dst, body, model=model, stream=False)


def _text_tokens(text: str) -> int:
    """About four ASCII characters per token; every other character counts as one token.

    (CJK text runs close to a token per character; accented Latin text is over-counted,
    which errs on the safe side for context-window checks.)
    """
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def estimate_tokens(src: Format, body: JSONObject) -> int:
    """A deterministic local estimate of a request's input tokens (no tokenizer needed).

    Texts (system, messages, thinking, tool calls and results, tool declarations) are
    counted with _text_tokens; each message adds 4 tokens of framing, each tool 8, each
    image/document/audio a fixed cost, and 3 tokens prime the reply.
    """
    conv = parse_request(src, body)
    total = _REPLY_PRIMING
    if conv.system:
        total += _PER_MESSAGE + sum(_text_tokens(t.text) for t in conv.system)
    for msg in conv.messages:
        total += _PER_MESSAGE
        for part in msg.parts:
            if isinstance(part, Text):
                total += _text_tokens(part.text)
            elif isinstance(part, Thinking):
                total += _text_tokens(part.text)
            elif isinstance(part, ToolCall):
                total += 3 + _text_tokens(part.name) + _text_tokens(part.arguments)
            elif isinstance(part, ToolResult):
                total += 3
                for item in part.content:
                    if isinstance(item, Text):
                        total += _text_tokens(item.text)
                    else:
                        total += _MEDIA_COST.get(item.kind, 0)
            elif isinstance(part, Media):
                total += _MEDIA_COST.get(part.kind, 0)
    for tool in conv.tools:
        total += _PER_TOOL + _text_tokens(tool.name) + _text_tokens(tool.description)
        if tool.parameters:
            total += _text_tokens(json_text(tool.parameters))
    return total


__all__ = ["count_tokens_request", "estimate_tokens"]
