# -*- test-case-name: tests.formats.test_claude_rules -*-
"""Output token limits: a request never asks a model for more than its catalog limit.

A provider refuses `max_tokens` above the model's output limit (Anthropic: "max_tokens:
128000 > 64000, which is the maximum allowed number of output tokens"), so a client's
larger value (Amp deep mode sends 128000) is lowered to the limit for every format.
"""

from __future__ import annotations

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSONObject

#: where each format keeps its output limit (Chat has two spellings)
_FIELDS: dict[Format, tuple[str, ...]] = {
    Format.CLAUDE: ("max_tokens",),
    Format.OPENAI_CHAT: ("max_tokens", "max_completion_tokens"),
    Format.OPENAI_RESPONSES: ("max_output_tokens",),
}
#: what Claude gets when the client named no limit and the catalog knows none
CLAUDE_DEFAULT_MAX_TOKENS = 1024


def _clamped(value: object, limit: int) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        return limit
    return value


def clamp_output_tokens(fmt: Format, body: JSONObject, limit: int | None) -> JSONObject:
    """`body` with its output limit at most `limit` (None or 0: unknown, unchanged).

    Claude requires `max_tokens`: a body without it gets the limit (or 1024).
    """
    out = body
    if fmt is Format.CLAUDE and "max_tokens" not in body:
        out = {**body, "max_tokens": limit or CLAUDE_DEFAULT_MAX_TOKENS}
    if not limit:
        return out
    if fmt is Format.GEMINI:
        config = out.get("generationConfig")
        if isinstance(config, dict) and "maxOutputTokens" in config:
            value = _clamped(config["maxOutputTokens"], limit)
            if value != config["maxOutputTokens"]:
                out = {**out, "generationConfig": {**config, "maxOutputTokens": value}}
        return out
    for name in _FIELDS.get(fmt, ()):
        if name in out:
            value = _clamped(out[name], limit)
            if value != out[name]:
                out = {**out, name: value}
    return out


__all__ = ["CLAUDE_DEFAULT_MAX_TOKENS", "clamp_output_tokens"]
