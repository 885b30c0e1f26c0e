"""Property tests over the request hub: meaning survives F -> P -> F, and bad input only ever
raises TranslationError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.formats import Format
from cliproxy.formats.requests import (
    TranslationError,
    apply_thinking,
    parse_request,
    translate_request,
)
from cliproxy.formats.requests.ir import Text, ToolCall, ToolResult, coalesce

FORMATS = list(Format)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- a neutral conversation, rendered the way each client would send it ---------------------

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
json_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
args = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), json_scalars, max_size=3)


@st.composite
def conversations(draw: Any) -> dict[str, Any]:
    """{"system": [str], "turns": [...]} with turns alternating user / assistant.

    Tool calls are always answered in the next user turn (in any order), possibly followed
    by more user text; the conversation never ends on an unanswered call.
    """
    system = draw(st.lists(texts, max_size=2))
    turns: list[dict[str, Any]] = [
        {"role": "user", "texts": draw(st.lists(texts, min_size=1, max_size=2))}
    ]
    counter = 0
    for _ in range(draw(st.integers(0, 3))):
        calls = []
        for _ in range(draw(st.integers(0, 3))):
            counter += 1
            # ids with characters Claude does not allow, to exercise sanitising consistently
            calls.append({"id": f"call.{counter}:x", "name": draw(names), "args": draw(args)})
        says = draw(st.lists(texts, min_size=0 if calls else 1, max_size=2))
        turns.append({"role": "assistant", "texts": says, "calls": calls})
        results = [{"id": c["id"], "name": c["name"], "text": draw(texts)} for c in calls]
        results = draw(st.permutations(results)) if results else []
        more = draw(st.lists(texts, min_size=0 if results else 1, max_size=1))
        turns.append({"role": "user", "texts": more, "results": results})
    return {"system": system, "turns": turns}


def render_chat(conv: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": s} for s in conv["system"]]
    for turn in conv["turns"]:
        if turn["role"] == "assistant":
            msg: dict[str, Any] = {"role": "assistant"}
            says = turn["texts"]
            msg["content"] = (
                says[0] if len(says) == 1 else [{"type": "text", "text": t} for t in says] or None
            )
            if turn["calls"]:
                msg["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
                    }
                    for c in turn["calls"]
                ]
            messages.append(msg)
            continue
        for r in turn.get("results", []):
            messages.append({"role": "tool", "tool_call_id": r["id"], "content": r["text"]})
        if turn["texts"]:
            content = [{"type": "text", "text": t} for t in turn["texts"]]
            messages.append({"role": "user", "content": content})
    return {"model": "gpt-4o", "messages": messages}


def render_responses(conv: dict[str, Any]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for turn in conv["turns"]:
        if turn["role"] == "assistant":
            if turn["texts"]:
                items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "id": "msg_1",
                        "content": [{"type": "output_text", "text": t} for t in turn["texts"]],
                    }
                )
            for c in turn["calls"]:
                items.append(
                    {
                        "type": "function_call",
                        "id": "fc_" + c["id"],
                        "call_id": c["id"],
                        "name": c["name"],
                        "arguments": json.dumps(c["args"]),
                    }
                )
            continue
        for r in turn.get("results", []):
            items.append({"type": "function_call_output", "call_id": r["id"], "output": r["text"]})
        if turn["texts"]:
            items.append(
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": t} for t in turn["texts"]],
                }
            )
    body: dict[str, Any] = {"model": "gpt-5", "input": items}
    if conv["system"]:
        body["instructions"] = conv["system"][0]
        extra = [{"type": "input_text", "text": s} for s in conv["system"][1:]]
        if extra:
            items.insert(0, {"type": "message", "role": "developer", "content": extra})
    return body


def render_claude(conv: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for turn in conv["turns"]:
        blocks: list[dict[str, Any]] = []
        if turn["role"] == "assistant":
            blocks += [{"type": "text", "text": t} for t in turn["texts"]]
            blocks += [
                {
                    "type": "tool_use",
                    "id": c["id"].replace(".", "_").replace(":", "_"),
                    "name": c["name"],
                    "input": c["args"],
                }
                for c in turn["calls"]
            ]
        else:
            blocks += [
                {
                    "type": "tool_result",
                    "tool_use_id": r["id"].replace(".", "_").replace(":", "_"),
                    "content": r["text"],
                }
                for r in turn.get("results", [])
            ]
            blocks += [{"type": "text", "text": t} for t in turn["texts"]]
        messages.append({"role": turn["role"], "content": blocks})
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages}
    if conv["system"]:
        body["system"] = [{"type": "text", "text": s} for s in conv["system"]]
    return body


def render_gemini(conv: dict[str, Any]) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    for turn in conv["turns"]:
        parts: list[dict[str, Any]] = []
        if turn["role"] == "assistant":
            parts += [{"text": t} for t in turn["texts"]]
            parts += [
                {"functionCall": {"name": c["name"], "args": c["args"]}} for c in turn["calls"]
            ]
            contents.append({"role": "model", "parts": parts})
            continue
        # Gemini clients answer calls in call order: results are paired by name and order.
        order = {c["id"]: i for i, c in enumerate(_calls_before(conv, turn))}
        for r in sorted(turn.get("results", []), key=lambda r: order[r["id"]]):
            parts.append(
                {"functionResponse": {"name": r["name"], "response": {"result": r["text"]}}}
            )
        parts += [{"text": t} for t in turn["texts"]]
        contents.append({"role": "user", "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if conv["system"]:
        body["systemInstruction"] = {"parts": [{"text": s} for s in conv["system"]]}
    return body


def _calls_before(conv: dict[str, Any], turn: dict[str, Any]) -> list[dict[str, Any]]:
    idx = next(i for i, t in enumerate(conv["turns"]) if t is turn)
    prev = conv["turns"][idx - 1] if idx else {}
    return prev.get("calls", [])


RENDER = {
    Format.OPENAI_CHAT: render_chat,
    Format.OPENAI_RESPONSES: render_responses,
    Format.CLAUDE: render_claude,
    Format.GEMINI: render_gemini,
}

# ---- meaning ------------------------------------------------------------------------------


def meaning(fmt: Format, body: dict[str, Any]) -> dict[str, Any]:
    """What must survive: system text, roles, texts, calls (name, args) and which result
    answers which call (ids compared up to renaming)."""
    conv = parse_request(fmt, body)
    system = [t.text for t in conv.system]
    canon: dict[str, int] = {}

    def cid(tool_id: str) -> int:
        return canon.setdefault(tool_id, len(canon))

    turns = []
    for msg in coalesce(conv.messages):
        if msg.role == "system":
            system += [p.text for p in msg.parts if isinstance(p, Text)]
            continue
        parts: list[Any] = []
        for p in msg.parts:
            if isinstance(p, Text):
                parts.append(("text", p.text))
            elif isinstance(p, ToolCall):
                parts.append(("call", cid(p.id), p.name, json.loads(p.arguments)))
            elif isinstance(p, ToolResult):
                parts.append(("result", cid(p.id), "".join(t.text for t in p.content)))
        results = sorted((p for p in parts if p[0] == "result"), key=lambda p: p[1])
        turns.append((msg.role, results + [p for p in parts if p[0] != "result"]))
    return {"system": system, "turns": turns}


# pytest-twisted re-wraps a @given function once per parametrized item, so the pairs are
# looped over inside each example instead of parametrized.
@PROPERTY
@given(conv=conversations())
def test_conversation_meaning_survives_a_round_trip(conv: Any) -> None:
    for origin in FORMATS:
        body = RENDER[origin](conv)
        expected = meaning(origin, body)
        for via in FORMATS:
            there = translate_request(origin, via, body, model="m", stream=False)
            wire = json.loads(json.dumps(there))
            back = translate_request(via, origin, wire, model="m", stream=False)
            assert meaning(origin, back) == expected, f"{origin} -> {via} -> {origin}"


# ---- robustness ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "text",
                    "role",
                    "content",
                    "parts",
                    "id",
                    "name",
                    "input",
                    "args",
                    "tool_calls",
                    "function",
                    "arguments",
                    "source",
                    "data",
                    "image_url",
                    "url",
                    "functionCall",
                    "functionResponse",
                    "response",
                    "output",
                    "call_id",
                    "summary",
                    "tool_use_id",
                    "thinking",
                    "inlineData",
                    "mimeType",
                    "tools",
                    "parameters",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "model", "x"])
kinds = st.sampled_from(
    [
        "text",
        "image",
        "image_url",
        "tool_use",
        "tool_result",
        "thinking",
        "document",
        "input_text",
        "input_image",
        "function_call",
        "function_call_output",
        "reasoning",
        "message",
        "file",
        "input_file",
        "weird",
    ]
)
part = st.fixed_dictionaries({"type": kinds}, optional={"x": json_values}) | json_values


@st.composite
def messy_bodies(draw: Any) -> Any:
    item = st.fixed_dictionaries(
        {"role": roles},
        optional={
            "content": st.lists(part, max_size=3) | json_values,
            "type": kinds,
            "parts": st.lists(part, max_size=3) | json_values,
            "tool_calls": json_values,
            "call_id": json_values,
            "output": json_values,
        },
    )
    listing = st.lists(item | json_values, max_size=4)
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "messages": listing | json_values,
                "input": listing | json_values,
                "contents": listing | json_values,
                "system": json_values,
                "tools": json_values,
                "tool_choice": json_values,
                "thinking": json_values,
                "generationConfig": json_values,
                "reasoning": json_values,
                "max_tokens": json_values,
                "stop": json_values,
            },
        )
        | json_values
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=messy_bodies())
def test_malformed_bodies_raise_only_translation_errors(body: Any) -> None:
    for src in FORMATS:
        for dst in FORMATS:
            if dst is src:
                continue
            try:
                out = translate_request(src, dst, body, model="m", stream=True)
            except TranslationError:
                continue
            json.dumps(out)  # whatever comes out is plain JSON


caps_choices = st.sampled_from(
    [
        None,
        {},
        {"min": 1024, "max": 128000, "zero_allowed": True},
        {"min": 128, "max": 32768, "dynamic_allowed": True, "levels": ["low", "high"]},
        {"levels": ["low", "medium", "high", "xhigh"]},
    ]
)
suffixes = st.none() | st.sampled_from(["none", "auto", "-1", "0", "low", "max", "99999", "x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=messy_bodies(), suffix=suffixes, caps=caps_choices, extra=json_values)
def test_apply_thinking_on_odd_bodies_raises_only_translation_errors(body, suffix, caps, extra):
    if isinstance(body, dict):
        # put odd values where each format keeps its thinking settings
        body = dict(
            body,
            thinking=extra,
            output_config=extra,
            reasoning=extra,
            reasoning_effort=extra,
            generationConfig={"thinkingConfig": extra},
        )
    for fmt in FORMATS:
        try:
            out = apply_thinking(fmt, body, suffix, model_caps=caps)
        except TranslationError:
            continue
        json.dumps(out)


def test_dedupe_results_keeps_the_last_result_where_the_first_stood() -> None:
    from cliproxy.formats.requests.ir import Message, dedupe_results

    call = ToolCall("c1", "f", "{}")
    first, second = ToolResult("c1", "f", [Text("old")]), ToolResult("c1", "f", [Text("new")])
    messages = [
        Message("assistant", [call]),
        Message("user", [first, Text("hi")]),
        Message("user", [second]),
    ]
    dedupe_results(messages)
    assert [m.parts for m in messages] == [[call], [second, Text("hi")]]
    unique = [Message("assistant", [call]), Message("user", [first])]
    dedupe_results(unique)  # nothing repeated: unchanged
    assert [m.parts for m in unique] == [[call], [first]]
