# -*- test-case-name: tests.formats.test_claude_rules -*-
"""What the Messages API refuses, fixed on the way out (core.md §2.6 "other body fixes").

Anthropic answers 400 to a request with more than four `cache_control` breakpoints, to a
`ttl: "1h"` breakpoint after a 5-minute one (tools, then system, then messages is the
order it checks), to thinking together with a forced tool choice, and to sampling values
thinking does not allow. These functions take a Messages body and return a fixed copy;
the input is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from cliproxy.formats.json_types import JSONObject

#: Anthropic's limit on cache_control breakpoints per request
MAX_CACHE_BREAKPOINTS = 4
_THINKING_ON = ("enabled", "adaptive", "auto")


def _blocks(body: JSONObject, section: str) -> list[JSONObject]:
    value = body.get(section)
    if not isinstance(value, list):
        return []
    return [b for b in value if isinstance(b, dict)]


def _message_blocks(body: JSONObject) -> Iterator[JSONObject]:
    for msg in _blocks(body, "messages"):
        content = msg.get("content")
        if isinstance(content, list):
            yield from (b for b in content if isinstance(b, dict))


def _in_wire_order(body: JSONObject) -> Iterator[JSONObject]:
    yield from _blocks(body, "tools")
    yield from _blocks(body, "system")
    yield from _message_blocks(body)


def _cache_marks(body: JSONObject) -> list[JSONObject]:
    """The blocks carrying `cache_control`, in wire order (one walk, no generator chain:
    this runs on every Claude request)."""
    marks: list[JSONObject] = []
    for section in ("tools", "system"):
        value = body.get(section)
        if isinstance(value, list):
            marks += [b for b in value if isinstance(b, dict) and "cache_control" in b]
    messages = body.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, list):
                marks += [b for b in content if isinstance(b, dict) and "cache_control" in b]
    return marks


def count_breakpoints(body: JSONObject) -> int:
    """Blocks of `tools`, `system` and message content that carry `cache_control`."""
    return len(_cache_marks(body))


def _drop_cache(blocks: list[JSONObject], excess: int, *, keep_last: bool) -> int:
    marked = [b for b in blocks if "cache_control" in b]
    if keep_last:
        marked = marked[:-1]
    for block in marked:
        if excess <= 0:
            break
        del block["cache_control"]
        excess -= 1
    return excess


def limit_breakpoints(body: JSONObject, limit: int = MAX_CACHE_BREAKPOINTS) -> JSONObject:
    """At most `limit` breakpoints; the ones that cache the most are kept.

    Dropped first: all but the last system and tool breakpoints (the last one caches
    everything before it), then message breakpoints oldest first, then the last ones.
    """
    excess = count_breakpoints(body) - limit
    if excess <= 0:
        return body
    out = copy.deepcopy(body)
    system, tools = _blocks(out, "system"), _blocks(out, "tools")
    excess = _drop_cache(system, excess, keep_last=True)
    excess = _drop_cache(tools, excess, keep_last=True)
    excess = _drop_cache(list(_message_blocks(out)), excess, keep_last=False)
    excess = _drop_cache(system, excess, keep_last=False)
    _drop_cache(tools, excess, keep_last=False)
    return out


def order_cache_ttls(body: JSONObject) -> JSONObject:
    """Drop `ttl: "1h"` from breakpoints that come after a 5-minute one."""
    blocks = list(_in_wire_order(body))
    seen_short = False
    late: list[int] = []
    for i, block in enumerate(blocks):
        cc = block.get("cache_control")
        if cc is None:
            continue
        if isinstance(cc, dict) and cc.get("ttl") == "1h":
            if seen_short:
                late.append(i)
        else:
            seen_short = True
    if not late:
        return body
    out = copy.deepcopy(body)
    copied = list(_in_wire_order(out))
    for i in late:
        cc = copied[i]["cache_control"]
        assert isinstance(cc, dict)
        copied[i]["cache_control"] = {k: v for k, v in cc.items() if k != "ttl"}
    return out


def thinking_on(body: JSONObject) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and str(thinking.get("type", "")).lower() in _THINKING_ON


def fit_thinking_and_sampling(body: JSONObject) -> JSONObject:
    """Thinking off when a tool is forced; sampling values thinking allows.

    With thinking on, Anthropic wants temperature 1 (or none), top_p >= 0.95 and no
    top_k; without it, temperature and top_p not both.
    """
    out = dict(body)
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        out.pop("thinking", None)
        config = out.get("output_config")
        if isinstance(config, dict) and "effort" in config:
            rest = {k: v for k, v in config.items() if k != "effort"}
            if rest:
                out["output_config"] = rest
            else:
                del out["output_config"]
    if thinking_on(out):
        if "temperature" in out and out["temperature"] != 1:
            del out["temperature"]
        top_p = out.get("top_p")
        if isinstance(top_p, (int, float)) and top_p < 0.95:
            del out["top_p"]
        out.pop("top_k", None)
    elif "temperature" in out and "top_p" in out:
        del out["top_p"]
    return out


def messages_body_rules(body: JSONObject) -> JSONObject:
    """All of the above, in the order Anthropic's checks need them."""
    out = fit_thinking_and_sampling(body)
    # one walk decides whether either breakpoint rule has anything to do (mostly not)
    marks = _cache_marks(out)
    if len(marks) > MAX_CACHE_BREAKPOINTS:
        out = limit_breakpoints(out)
    if any(isinstance(cc := b["cache_control"], dict) and cc.get("ttl") == "1h" for b in marks):
        out = order_cache_ttls(out)
    return out


__all__ = [
    "MAX_CACHE_BREAKPOINTS",
    "count_breakpoints",
    "fit_thinking_and_sampling",
    "limit_breakpoints",
    "messages_body_rules",
    "order_cache_ttls",
]
