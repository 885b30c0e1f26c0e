"""client_tools: the names an upstream was given map back to the tools the client declared."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.formats import Format
from cliproxy.formats.requests import client_tools, translate_request
from cliproxy.formats.responses_side import ClientTool, stream_translator, translate_response
from tests.formats.test_requests_roundtrip import RENDER, conversations
from tests.formats.test_resp_samples import events_of, sse_named

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
FORMATS = list(Format)
PAIRS = [(s, d) for s in FORMATS for d in FORMATS if s is not d]
PAIR_IDS = [f"{s.value}->{d.value}" for s, d in PAIRS]

#: the tool names each upstream accepts
ACCEPTED = {
    Format.GEMINI: re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}"),
    Format.CLAUDE: re.compile(r"[a-zA-Z0-9_-]{1,64}"),
    Format.OPENAI_CHAT: re.compile(r"[a-zA-Z0-9_-]{1,64}"),
    Format.OPENAI_RESPONSES: re.compile(r"[a-zA-Z0-9_-]{1,64}"),
}
DIGIT_FIRST = "3day_forecast"
DOTTED = "github.search:code"  # fine for Gemini, refused by Claude and OpenAI
LONG_MCP = "mcp__weather_service_for_many_cities__get_current_conditions_for_city"
LONG_MCP_TWIN = "mcp__weather_service_for_many_cities__get_current_conditions_for_city_v2"


def declare(src: Format, body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """`body` with function tools `names` declared the way a client of `src` does."""
    if src is Format.OPENAI_CHAT:
        tools = [{"type": "function", "function": {"name": n, "parameters": SCHEMA}} for n in names]
    elif src is Format.OPENAI_RESPONSES:
        tools = [{"type": "function", "name": n, "parameters": SCHEMA} for n in names]
    elif src is Format.CLAUDE:
        tools = [{"name": n, "input_schema": SCHEMA} for n in names]
    else:
        tools = [{"functionDeclarations": [{"name": n, "parameters": SCHEMA} for n in names]}]
    return {**body, "tools": tools}


def client_body(src: Format, names: list[str]) -> dict[str, Any]:
    conv = {"system": [], "turns": [{"role": "user", "texts": ["hi"]}]}
    return declare(src, RENDER[src](conv), names)


def upstream_names(dst: Format, body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    if dst is Format.OPENAI_CHAT:
        return [t["function"]["name"] for t in tools]
    if dst is Format.GEMINI:
        return [d["name"] for t in tools for d in t.get("functionDeclarations", [])]
    return [t["name"] for t in tools]


def mapped_back(src: Format, dst: Format, names: list[str]) -> list[str]:
    body = client_body(src, names)
    upstream = translate_request(src, dst, body, model="m", stream=False)
    table = client_tools(src, dst, body)
    return [table.get(n, ClientTool(n)).name for n in upstream_names(dst, upstream)]


@pytest.mark.parametrize("src,dst", PAIRS, ids=PAIR_IDS)
def test_every_renamed_tool_maps_back_to_the_clients_name(src, dst):
    names = [DIGIT_FIRST, LONG_MCP, LONG_MCP_TWIN, DOTTED, "github_search_code", "plain_tool"]
    assert mapped_back(src, dst, names) == names


def test_only_renamed_tools_are_in_the_table():
    body = client_body(Format.CLAUDE, [DIGIT_FIRST, "plain_tool"])
    assert client_tools(Format.CLAUDE, Format.GEMINI, body) == {
        "_3day_forecast": ClientTool(DIGIT_FIRST)
    }
    assert client_tools(Format.CLAUDE, Format.OPENAI_CHAT, body) == {}


@pytest.mark.parametrize("dst", [Format.CLAUDE, Format.OPENAI_CHAT, Format.OPENAI_RESPONSES])
def test_gemini_clients_dotted_names_are_fitted_for_claude_and_openai(dst):
    body = client_body(Format.GEMINI, [DOTTED, "github_search_code"])
    upstream = translate_request(Format.GEMINI, dst, body, model="m", stream=False)
    # the name already taken keeps it; the dotted one gets a free variant
    assert upstream_names(dst, upstream) == ["github_search_code_1", "github_search_code"]
    assert client_tools(Format.GEMINI, dst, body) == {"github_search_code_1": ClientTool(DOTTED)}


def test_long_names_are_shortened_uniquely_for_codex():
    body = client_body(Format.CLAUDE, [LONG_MCP, LONG_MCP_TWIN])
    table = client_tools(Format.CLAUDE, Format.OPENAI_RESPONSES, body)
    assert table == {
        "mcp__get_current_conditions_for_city": ClientTool(LONG_MCP),
        "mcp__get_current_conditions_for_city_v2": ClientTool(LONG_MCP_TWIN),
    }


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.value for f in FORMATS])
def test_same_format_needs_no_table(fmt):
    assert client_tools(fmt, fmt, client_body(fmt, [DIGIT_FIRST, LONG_MCP])) == {}


@pytest.mark.parametrize("src,dst", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("tools", [5, "x", [None, 3, {"type": "function"}], {"a": 1}])
def test_odd_tool_fields_give_an_empty_table_not_an_error(src, dst, tools):
    body = client_body(src, [])
    body["tools"] = tools
    assert client_tools(src, dst, body) == {}


def test_responses_namespaces_and_freeform_tools_are_remembered():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "additional_tools", "tools": [{"type": "function", "name": "late"}]},
        ],
        "tools": [
            {
                "type": "namespace",
                "name": "crm",
                "tools": [{"type": "function", "name": "lookup", "parameters": SCHEMA}],
            },
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "name": "plain", "parameters": SCHEMA},
        ],
    }
    for dst in (Format.CLAUDE, Format.OPENAI_CHAT, Format.GEMINI):
        assert client_tools(Format.OPENAI_RESPONSES, dst, body) == {
            "crm__lookup": ClientTool("lookup", "crm"),
            "apply_patch": ClientTool("apply_patch", custom=True),
        }


# Names any client could send: OpenAI's and Claude's character set, and Gemini's `.` and `:`.
tool_name = st.text(alphabet="abcxyzABC0123456789_-.:", min_size=1, max_size=90).filter(
    lambda n: n.strip("-") != ""
)


# pytest-twisted re-wraps a @given function once per parametrized item, so the pairs are
# looped over inside each example instead of parametrized.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(tool_name, min_size=1, max_size=5, unique=True))
def test_any_declared_names_reach_the_upstream_distinct_and_map_back_exactly(names):
    for src, dst in PAIRS:
        body = client_body(src, names)
        upstream = upstream_names(dst, translate_request(src, dst, body, model="m", stream=False))
        assert all(ACCEPTED[dst].fullmatch(n) for n in upstream), (dst, upstream)
        assert len(set(upstream)) == len(upstream)  # no upstream takes two tools of one name
        table = client_tools(src, dst, body)
        assert [table.get(n, ClientTool(n)).name for n in upstream] == names


def history_calls(dst: Format, body: dict[str, Any]) -> list[str]:
    """The names of the calls in a request's history, in order."""
    if dst is Format.OPENAI_CHAT:
        return [c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or []]
    if dst is Format.OPENAI_RESPONSES:
        return [i["name"] for i in body["input"] if i.get("type") == "function_call"]
    if dst is Format.CLAUDE:
        return [
            b["name"]
            for m in body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_use"
        ]
    return [
        p["functionCall"]["name"]
        for c in body["contents"]
        for p in c["parts"]
        if "functionCall" in p
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv=conversations(), odd=st.lists(tool_name, min_size=1, max_size=4, unique=True))
def test_calls_in_the_history_use_the_names_the_upstream_was_declared(conv, odd):
    used = list(dict.fromkeys(c["name"] for t in conv["turns"] for c in t.get("calls", [])))
    rename = dict(zip(used, odd, strict=False))
    for turn in conv["turns"]:
        for item in turn.get("calls", []) + turn.get("results", []):
            item["name"] = rename.get(item["name"], item["name"])
    declared = list(dict.fromkeys([*(rename.get(n, n) for n in used), *odd]))
    for src in FORMATS:
        body = declare(src, RENDER[src](conv), declared)
        client_calls = history_calls(src, body)
        for dst in FORMATS:
            if dst is src:
                continue
            upstream = translate_request(src, dst, body, model="m", stream=False)
            calls = history_calls(dst, upstream)
            assert set(calls) <= set(upstream_names(dst, upstream)), f"{src} -> {dst}"
            table = client_tools(src, dst, body)
            assert [table.get(n, ClientTool(n)).name for n in calls] == client_calls


# -- the response side puts Responses namespaces and freeform tools back ------------------------


def claude_call_stream(name: str, pieces: list[str]) -> bytes:
    usage = {"input_tokens": 3, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
               "content": [], "stop_reason": None, "usage": usage}  # fmt: skip
    return sse_named(
        [
            {"type": "message_start", "message": message},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}},
            },
        ]
        + [
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }  # fmt: skip
            for p in pieces
        ]
        + [
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": usage},
            {"type": "message_stop"},
        ]
    )


def responses_stream(name: str, pieces: list[str], tool_names) -> list[dict[str, Any]]:
    t = stream_translator(
        Format.CLAUDE, Format.OPENAI_RESPONSES, model="m", tool_names=tool_names, nonce="n"
    )
    out: list[bytes] = []
    for event in events_of(claude_call_stream(name, pieces)):
        out += t.feed(event)
    out += t.finish()
    return [json.loads(e.data) for e in events_of(b"".join(out))]


def test_namespaced_call_streams_with_its_namespace():
    events = responses_stream(
        "crm__lookup", ['{"q":', ' "ada"}'], {"crm__lookup": ClientTool("lookup", "crm")}
    )
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == [
        {
            "id": "fc_toolu_1",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"q": "ada"}',
            "call_id": "toolu_1",
            "name": "lookup",
            "namespace": "crm",
        }
    ]
    added = next(e["item"] for e in events if e["type"] == "response.output_item.added")
    assert (added["name"], added["namespace"]) == ("lookup", "crm")
    assert events[-1]["response"]["output"] == done


def test_freeform_call_streams_as_custom_tool_call_with_raw_input():
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    args = json.dumps({"input": patch})
    events = responses_stream(
        "apply_patch",
        [args[:7], args[7:20], args[20:]],
        {"apply_patch": ClientTool("apply_patch", custom=True)},
    )
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == patch
    done_input = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done_input["input"] == patch
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item == {
        "id": "fc_toolu_1",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "toolu_1",
        "name": "apply_patch",
        "input": patch,
    }
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"] == [item]


def test_whole_responses_rebuild_namespaces_and_freeform_calls():
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "crm__lookup", "input": {"q": "ada"}},
            {"type": "tool_use", "id": "toolu_2", "name": "apply_patch", "input": {"input": "P"}},
            {"type": "tool_use", "id": "toolu_3", "name": "other", "input": {}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    names = {
        "crm__lookup": ClientTool("lookup", "crm"),
        "apply_patch": ClientTool("apply_patch", custom=True),
    }
    out = translate_response(
        Format.CLAUDE, Format.OPENAI_RESPONSES, body, model="m", tool_names=names
    )
    calls = [(i["type"], i.get("namespace"), i["name"], i.get("input")) for i in out["output"]]
    assert calls == [
        ("function_call", "crm", "lookup", None),
        ("custom_tool_call", None, "apply_patch", "P"),
        ("function_call", None, "other", None),
    ]


CALL_NAME = {
    Format.CLAUDE: lambda out: out["content"][0]["name"],
    Format.OPENAI_CHAT: lambda out: out["choices"][0]["message"]["tool_calls"][0]["function"][
        "name"
    ],
    Format.GEMINI: lambda out: out["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
}


@pytest.mark.parametrize("client", list(CALL_NAME), ids=[c.value for c in CALL_NAME])
def test_other_clients_take_just_the_name_from_a_client_tool(client):
    provider = Format.OPENAI_RESPONSES
    body = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {"type": "function_call", "call_id": "c1", "name": "crm__lookup", "arguments": "{}"}
        ],
    }
    names = {"crm__lookup": ClientTool("lookup", "crm")}
    out = translate_response(provider, client, body, model="m", tool_names=names)
    assert CALL_NAME[client](out) == "lookup"
