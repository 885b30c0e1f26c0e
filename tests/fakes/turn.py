"""A provider-neutral model answer (`Turn`) and how the fakes choose one by default.

Each provider module renders a `Turn` in its own wire format (JSON body or SSE events).
The fakes read each request into an `Ask` (model, tools, last user text, whether
reasoning was requested) and `decide` answers deterministically:

* the last message is a tool result -> plain text;
* tools are offered and the tool choice forces one, or the last user text says "tool"
  or names a tool -> one call of that tool (else the first one), with placeholder
  arguments built from its JSON schema;
* otherwise plain text "hello from <fake name>";
* reasoning/thinking is added when the request asks for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    """One function call. `id` defaults to a provider-style deterministic id."""

    name: str
    args: dict = field(default_factory=dict)
    id: str | None = None


@dataclass
class Usage:
    """Token counts, mapped to each provider's usage fields."""

    input_tokens: int = 10
    output_tokens: int = 5
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Turn:
    """What the model says.

    Attributes:
        text: the answer, or explicit stream deltas as a list; None or "" for none.
        tool_calls: function calls, after the text.
        reasoning: thinking text (or deltas), sent before everything else.
        signature: the thinking signature / encrypted reasoning / thoughtSignature.
        usage: token counts.
        stop: "end", "max_tokens" or "tool_use"; None picks tool_use when there are
            tool calls, else end.
        id: response id; None uses the builder's deterministic default.
    """

    text: str | list[str] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | list[str] | None = None
    signature: str = "ZmFrZS1zaWduYXR1cmU="
    usage: Usage = field(default_factory=Usage)
    stop: str | None = None
    id: str | None = None

    @property
    def stop_kind(self) -> str:
        if self.stop:
            return self.stop
        return "tool_use" if self.tool_calls else "end"

    @property
    def full_text(self) -> str:
        return "".join(self.text) if isinstance(self.text, list) else (self.text or "")

    @property
    def full_reasoning(self) -> str:
        r = self.reasoning
        return "".join(r) if isinstance(r, list) else (r or "")


def deltas(value: str | list[str] | None) -> list[str]:
    """Stream deltas for a text: an explicit list as is, else one delta per word."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return re.findall(r"\s*\S+\s*$|\s*\S+", value) or ([value] if value else [])


def args_deltas(args_json: str) -> list[str]:
    """Split tool-call argument JSON into three uneven pieces, like real streams do."""
    n = len(args_json)
    if n < 3:
        return [args_json]
    a, b = max(1, n // 3), max(2, (2 * n) // 3)
    return [args_json[:a], args_json[a:b], args_json[b:]]


def placeholder_args(schema: Any) -> dict:
    """Arguments satisfying a JSON schema's required properties with simple values."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    out = {}
    for name in schema.get("required") or []:
        out[name] = _placeholder(props.get(name) or {})
    return out


def _placeholder(schema: dict) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = (kind or "string").lower()
    if kind == "string":
        return "test"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return placeholder_args(schema)
    return None


@dataclass
class Ask:
    """What a request asks for, read from any provider's request body.

    Attributes:
        model: the model named in the body or URL.
        stream: whether the client wants a stream.
        tools: offered tools as (name, JSON schema).
        forced_tool: a tool name the tool choice forces, "any" for "some tool", else None.
        last_user_text: text of the last user message.
        last_is_tool_result: the last message carries a tool result.
        wants_reasoning: the request enables thinking/reasoning output.
    """

    model: str = ""
    stream: bool = False
    tools: list[tuple[str, Any]] = field(default_factory=list)
    forced_tool: str | None = None
    last_user_text: str = ""
    last_is_tool_result: bool = False
    wants_reasoning: bool = False


def decide(ask: Ask, text: str, reasoning: str, usage: Usage | None = None) -> Turn:
    """The default answer for a request (see the module docstring)."""
    turn = Turn(usage=usage or Usage())
    if ask.wants_reasoning:
        turn.reasoning = reasoning
        turn.usage.reasoning_tokens = turn.usage.reasoning_tokens or 3
    call = _tool_to_call(ask)
    if call is not None:
        name, schema = call
        turn.tool_calls = [ToolCall(name, placeholder_args(schema))]
    else:
        turn.text = text
    return turn


def _tool_to_call(ask: Ask) -> tuple[str, Any] | None:
    if not ask.tools or ask.last_is_tool_result:
        return None
    by_name = dict(ask.tools)
    if ask.forced_tool and ask.forced_tool != "any" and ask.forced_tool in by_name:
        return ask.forced_tool, by_name[ask.forced_tool]
    text = ask.last_user_text
    mentioned = [n for n in by_name if n and n in text]
    if ask.forced_tool == "any" or mentioned or "tool" in text.lower():
        name = max(mentioned, key=len) if mentioned else ask.tools[0][0]
        return name, by_name[name]
    return None
