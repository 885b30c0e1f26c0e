"""Whole (non-stream) responses through every provider → client pair."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cliproxy.formats import Format
from cliproxy.formats.responses_side import aggregate_stream, translate_response
from tests.formats.test_resp_clients import Seen, assert_sees
from tests.formats.test_resp_samples import (
    CLAUDE_SIG,
    CODEX_SIG,
    SAMPLE_IDS,
    SAMPLES,
    Sample,
    events_of,
)

CLIENTS = list(Format)


def _args(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def read_chat_body(body: dict[str, Any]) -> Seen:
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    message = choice["message"]
    assert message["role"] == "assistant"
    return Seen(
        text=message["content"] or "",
        thinking=message.get("reasoning_content") or "",
        tools=[
            (c["id"], c["function"]["name"], _args(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ],
        finish=choice["finish_reason"],
        usage=body.get("usage"),
        model=body["model"],
    )


def read_claude_body(body: dict[str, Any]) -> Seen:
    assert body["type"] == "message" and body["role"] == "assistant"
    seen = Seen(finish=body["stop_reason"], usage=body["usage"], model=body["model"])
    for block in body["content"]:
        if block["type"] == "text":
            seen.text += block["text"]
        elif block["type"] == "thinking":
            seen.thinking += block["thinking"]
            seen.signature = block.get("signature") or seen.signature
        elif block["type"] == "tool_use":
            assert isinstance(block["input"], dict)
            seen.tools.append((block["id"], block["name"], block["input"]))
    return seen


def read_responses_body(body: dict[str, Any]) -> Seen:
    assert body["object"] == "response" and body["id"].startswith("resp_")
    seen = Seen(finish=body["status"], usage=body["usage"], model=body["model"])
    if body["status"] == "incomplete":
        seen.finish = ("incomplete", body["incomplete_details"]["reason"])
    for item in body["output"]:
        if item["type"] == "message":
            seen.text += "".join(p["text"] for p in item["content"])
        elif item["type"] == "reasoning":
            seen.thinking += "".join(p["text"] for p in item["summary"])
            seen.signature = item.get("encrypted_content") or seen.signature
        elif item["type"] == "function_call":
            seen.tools.append((item["call_id"], item["name"], _args(item["arguments"])))
    return seen


def read_gemini_body(body: dict[str, Any]) -> Seen:
    cand = body["candidates"][0]
    seen = Seen(finish=cand["finishReason"], usage=body.get("usageMetadata"))
    seen.model = body.get("modelVersion")
    for part in cand["content"]["parts"]:
        if "functionCall" in part:
            call = part["functionCall"]
            seen.tools.append((call.get("id", ""), call["name"], call["args"]))
        elif part.get("thought"):
            seen.thinking += part["text"]
            seen.signature = part.get("thoughtSignature") or seen.signature
        else:
            seen.text += part.get("text", "")
    return seen


BODY_READERS = {
    Format.OPENAI_CHAT: read_chat_body,
    Format.CLAUDE: read_claude_body,
    Format.OPENAI_RESPONSES: read_responses_body,
    Format.GEMINI: read_gemini_body,
}


def aggregated(s: Sample) -> dict[str, Any]:
    aggregator = aggregate_stream(s.provider)
    for event in events_of(s.body):
        aggregator.feed(event)
    return aggregator.result()


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_every_pair_translates_the_whole_response(s: Sample, client: Format):
    upstream = aggregated(s)
    body = translate_response(s.provider, client, upstream, model="client-model")
    json.dumps(body)  # plain JSON types only
    seen = BODY_READERS[client](body)
    assert_sees(client, seen, s)  # signatures are checked where the client can carry them
    if client is not s.provider:
        assert seen.model == "client-model"


def test_same_format_returns_the_body_itself():
    body = {"id": "msg_1", "type": "message", "content": []}
    assert translate_response(Format.CLAUDE, Format.CLAUDE, body, model="x") is body


# --- hand-written upstream bodies, as each API returns them -----------------------------------

CLAUDE_BODY = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-4-1-20250805",
    "content": [
        {"type": "thinking", "thinking": "Need weather.", "signature": CLAUDE_SIG},
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "Paris"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 20},
}

CHAT_BODY = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "reasoning_content": "Need weather.",
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 150,
        "completion_tokens": 20,
        "total_tokens": 170,
        "prompt_tokens_details": {"cached_tokens": 50},
    },
}

RESPONSES_BODY = {
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac6",
    "object": "response",
    "created_at": 1741476777,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-5",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Need weather."}],
            "encrypted_content": CODEX_SIG,
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_abc",
            "name": "get_weather",
            "arguments": '{"location":"Paris"}',
        },
    ],
    "usage": {
        "input_tokens": 150,
        "input_tokens_details": {"cached_tokens": 50},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 170,
    },
}

GEMINI_BODY = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "Need weather.", "thought": True},
                    {"text": "Checking."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                        "thoughtSignature": "CiQB0e2Kb",
                    },
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 150,
        "candidatesTokenCount": 15,
        "thoughtsTokenCount": 5,
        "totalTokenCount": 170,
        "cachedContentTokenCount": 50,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "2F6vaN2FCqaQz7IP8cLdqA0",
}

BODIES = {
    Format.CLAUDE: CLAUDE_BODY,
    Format.OPENAI_CHAT: CHAT_BODY,
    Format.OPENAI_RESPONSES: RESPONSES_BODY,
    Format.GEMINI: GEMINI_BODY,
}

_TOOL_FINISH = {
    Format.OPENAI_CHAT: "tool_calls",
    Format.CLAUDE: "tool_use",
    Format.OPENAI_RESPONSES: "completed",
    Format.GEMINI: "STOP",
}


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_real_upstream_bodies_translate_for_every_client(provider, client):
    body = translate_response(provider, client, BODIES[provider], model="client-model")
    seen = BODY_READERS[client](body)
    assert seen.text == "Checking."
    assert seen.thinking == "Need weather."
    assert seen.tool_calls() == [("get_weather", {"location": "Paris"})]
    assert seen.finish == _TOOL_FINISH[client]
    assert seen.usage
    if client is not provider:
        usage = seen.usage
        if client is Format.OPENAI_CHAT:
            assert (usage["prompt_tokens"], usage["total_tokens"]) == (150, 170)
            assert usage["prompt_tokens_details"] == {"cached_tokens": 50}
        elif client is Format.CLAUDE:
            assert usage == {
                "input_tokens": 100,
                "output_tokens": 20,
                "cache_read_input_tokens": 50,
            }
        elif client is Format.OPENAI_RESPONSES:
            assert (usage["input_tokens"], usage["output_tokens"]) == (150, 20)
            assert usage["input_tokens_details"] == {"cached_tokens": 50}
        else:
            assert (usage["promptTokenCount"], usage["totalTokenCount"]) == (150, 170)
            assert usage["cachedContentTokenCount"] == 50


def test_gemini_thought_signature_on_a_tool_call_reaches_chat_clients():
    body = translate_response(Format.GEMINI, Format.OPENAI_CHAT, GEMINI_BODY, model="m")
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["extra_content"] == {"google": {"thought_signature": "CiQB0e2Kb"}}


# --- finish reasons (translators.md §4.1, with the fixes noted in the README) -----------------


def _claude(stop_reason: str) -> dict[str, Any]:
    return dict(CLAUDE_BODY, content=[{"type": "text", "text": "x"}], stop_reason=stop_reason)


def _chat(finish: str) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}
    return dict(CHAT_BODY, choices=[choice])


def _gemini(finish: str) -> dict[str, Any]:
    cand = {"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": finish}
    return dict(GEMINI_BODY, candidates=[cand])


def _responses(status: str, reason: str | None = None) -> dict[str, Any]:
    message = RESPONSES_BODY["output"][1]
    out = dict(RESPONSES_BODY, status=status, output=[message])
    if reason:
        out["incomplete_details"] = {"reason": reason}
    return out


FINISH_CASES = [
    # upstream body, chat, claude, responses, gemini
    (Format.CLAUDE, _claude("end_turn"), "stop", "end_turn", "completed", "STOP"),
    (Format.CLAUDE, _claude("max_tokens"), "length", "max_tokens", "incomplete", "MAX_TOKENS"),
    (Format.CLAUDE, _claude("stop_sequence"), "stop", "stop_sequence", "completed", "STOP"),
    (Format.CLAUDE, _claude("refusal"), "content_filter", "refusal", "incomplete", "SAFETY"),
    (Format.CLAUDE, _claude("pause_turn"), "stop", "pause_turn", "completed", "STOP"),
    (Format.OPENAI_CHAT, _chat("stop"), "stop", "end_turn", "completed", "STOP"),
    (Format.OPENAI_CHAT, _chat("length"), "length", "max_tokens", "incomplete", "MAX_TOKENS"),
    (
        Format.OPENAI_CHAT,
        _chat("content_filter"),
        "content_filter",
        "refusal",
        "incomplete",
        "SAFETY",
    ),
    (Format.GEMINI, _gemini("STOP"), "stop", "end_turn", "completed", "STOP"),
    (Format.GEMINI, _gemini("MAX_TOKENS"), "length", "max_tokens", "incomplete", "MAX_TOKENS"),
    (Format.GEMINI, _gemini("SAFETY"), "content_filter", "refusal", "incomplete", "SAFETY"),
    (Format.GEMINI, _gemini("RECITATION"), "content_filter", "refusal", "incomplete", "SAFETY"),
    (Format.OPENAI_RESPONSES, _responses("completed"), "stop", "end_turn", "completed", "STOP"),
    (
        Format.OPENAI_RESPONSES,
        _responses("incomplete", "max_output_tokens"),
        "length",
        "max_tokens",
        "incomplete",
        "MAX_TOKENS",
    ),
    (
        Format.OPENAI_RESPONSES,
        _responses("incomplete", "content_filter"),
        "content_filter",
        "refusal",
        "incomplete",
        "SAFETY",
    ),
]


@pytest.mark.parametrize("provider,body,chat,claude,responses,gemini", FINISH_CASES)
def test_finish_reasons_map_per_client(provider, body, chat, claude, responses, gemini):
    want = {
        Format.OPENAI_CHAT: chat,
        Format.CLAUDE: claude,
        Format.OPENAI_RESPONSES: responses,
        Format.GEMINI: gemini,
    }
    for client, expected in want.items():
        if client is provider:
            continue
        out = translate_response(provider, client, body, model="m")
        got = {
            Format.OPENAI_CHAT: lambda b: b["choices"][0]["finish_reason"],
            Format.CLAUDE: lambda b: b["stop_reason"],
            Format.OPENAI_RESPONSES: lambda b: b["status"],
            Format.GEMINI: lambda b: b["candidates"][0]["finishReason"],
        }[client](out)
        assert got == expected, (provider, client)


# --- bad input ---------------------------------------------------------------------------------


def _chat_with_args(arguments: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return dict(
        CHAT_BODY, choices=[{"index": 0, "message": message, "finish_reason": "tool_calls"}]
    )


@pytest.mark.parametrize("arguments", ["{'a': 1", "[1, 2]", '"text"'])
def test_tool_arguments_that_are_not_a_json_object(arguments):
    body = _chat_with_args(arguments)
    claude = translate_response(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m")
    assert claude["content"][0]["input"] == {"_raw": arguments}
    gemini = translate_response(Format.OPENAI_CHAT, Format.GEMINI, body, model="m")
    assert gemini["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == {
        "_raw": arguments
    }
    responses = translate_response(Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, body, model="m")
    assert responses["output"][0]["arguments"] == arguments


def test_empty_tool_arguments_become_an_empty_object():
    body = _chat_with_args("")
    assert (
        translate_response(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m")["content"][0][
            "input"
        ]
        == {}
    )
    out = translate_response(Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, body, model="m")
    assert out["output"][0]["arguments"] == "{}"


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize(
    "junk", [{}, {"choices": "x", "content": 3, "candidates": [None], "output": {}}]
)
def test_malformed_upstream_bodies_give_an_empty_answer_not_an_exception(provider, client, junk):
    if provider is client:
        return
    body = translate_response(provider, client, junk, model="m")
    seen = BODY_READERS[client](body)
    assert (seen.text, seen.tools) == ("", [])


def test_claude_tool_ids_are_made_safe_for_claude_clients():
    body = dict(GEMINI_BODY)
    body["candidates"] = [
        {
            "content": {"parts": [{"functionCall": {"name": "ns.tool:x", "args": {}}}]},
            "finishReason": "STOP",
        }
    ]
    out = translate_response(Format.GEMINI, Format.CLAUDE, body, model="m", nonce="n1")
    tool_id = out["content"][0]["id"]
    assert tool_id == "ns_tool_x-n11"
    assert out["stop_reason"] == "tool_use"


def test_tool_names_are_mapped_back_in_whole_responses():
    out = translate_response(
        Format.OPENAI_RESPONSES,
        Format.CLAUDE,
        RESPONSES_BODY,
        model="m",
        tool_names={"get_weather": "Get-Weather"},
    )
    assert out["content"][-1]["name"] == "Get-Weather"


def test_the_completed_event_itself_is_accepted_as_a_responses_body():
    event = {"type": "response.completed", "response": RESPONSES_BODY}
    out = translate_response(Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, event, model="m")
    assert out["choices"][0]["message"]["content"] == "Checking."
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}


def test_vertex_wrapped_gemini_bodies_are_unwrapped():
    out = translate_response(
        Format.GEMINI, Format.OPENAI_CHAT, {"response": GEMINI_BODY}, model="m"
    )
    assert out["choices"][0]["message"]["content"] == "Checking."
