"""Streams through every provider → client pair, checked by the strict reference clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cliproxy.formats import Format
from cliproxy.formats.responses_side import StreamTranslator, error_event, stream_translator
from cliproxy.formats.sse import SSEEvent
from tests.formats.test_resp_clients import READERS, assert_sees, read_gemini_array
from tests.formats.test_resp_samples import (
    SAMPLE_IDS,
    SAMPLES,
    TOOL_ARG_PIECES,
    Sample,
    events_of,
    sse_data,
    sse_named,
)

CREATED = 1_700_000_000
NONCE = "n0nce"
CLIENTS = list(Format)


def translator(provider: Format, client: Format, **kw: Any) -> StreamTranslator:
    return stream_translator(
        provider, client, model="client-model", created=CREATED, nonce=NONCE, **kw
    )


def run(
    provider: Format, client: Format, events: list[SSEEvent], **kw: Any
) -> tuple[bytes, StreamTranslator]:
    t = translator(provider, client, **kw)
    out: list[bytes] = []
    for event in events:
        out += t.feed(event)
    out += t.finish()
    return b"".join(out), t


def sample(provider: Format, scenario: str) -> Sample:
    return next(s for s in SAMPLES if s.provider is provider and s.scenario == scenario)


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    return [
        (e.event, json.loads(e.data) if e.data != b"[DONE]" else "[DONE]") for e in events_of(body)
    ]


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_every_pair_carries_text_reasoning_tools_finish_and_usage(s: Sample, client: Format):
    body, t = run(s.provider, client, events_of(s.body))
    seen = READERS[client](body)
    assert_sees(client, seen, s)
    assert t.done
    assert t.skipped == 0
    e = s.expected
    assert (t.usage.input_tokens, t.usage.output_tokens) == (e.input_tokens, e.output_tokens)
    assert (t.usage.cached, t.usage.reasoning) == (e.cached_tokens, e.reasoning_tokens)
    if client is not s.provider:
        assert seen.model == "client-model"
    # exactly one terminal: afterwards nothing more comes out
    assert t.feed(events_of(s.body)[-1]) == []
    assert t.finish() == []
    assert t.error(500, "late") == []


STREAMING_TOOLS = [Format.CLAUDE, Format.OPENAI_CHAT, Format.OPENAI_RESPONSES]


@pytest.mark.parametrize("client", STREAMING_TOOLS)
@pytest.mark.parametrize("provider", STREAMING_TOOLS)
def test_tool_arguments_stream_as_deltas_between_formats_that_stream_them(provider, client):
    if provider is client:
        pytest.skip("pass-through")
    body, _ = run(provider, client, events_of(sample(provider, "tool").body))
    pieces = []
    for name, data in sse_events(body):
        if client is Format.CLAUDE and name == "content_block_delta":
            if data["delta"]["type"] == "input_json_delta":
                pieces.append(data["delta"]["partial_json"])
        elif client is Format.OPENAI_RESPONSES:
            if name == "response.function_call_arguments.delta":
                pieces.append(data["delta"])
        elif client is Format.OPENAI_CHAT and data != "[DONE]":
            for call in data["choices"][0]["delta"].get("tool_calls") or []:
                if call["function"].get("arguments"):
                    pieces.append(call["function"]["arguments"])
    assert pieces == TOOL_ARG_PIECES


def test_worked_sequence_chat_client_claude_upstream():
    """translators.md §4.5 first sequence (tool index counted per call, not per block)."""
    body, _ = run(Format.CLAUDE, Format.OPENAI_CHAT, events_of(sample(Format.CLAUDE, "tool").body))
    chunks = [data for _, data in sse_events(body)]
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1:3] == [{"content": "Let me "}, {"content": "check the weather."}]
    assert deltas[3] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    final = chunks[-2]
    assert final["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    assert final["usage"]["prompt_tokens"] == 40
    assert {c["id"] for c in chunks[:-1]} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}
    assert {c["created"] for c in chunks[:-1]} == {CREATED}


def _chat_chunk(delta: dict[str, Any] | None, finish: str | None = None, usage=None):
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "deepseek-reasoner",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = usage
    return chunk


def test_worked_sequence_claude_client_openai_upstream_reasoning_text_tool():
    """translators.md §4.5 second sequence, with arguments streamed instead of buffered."""
    upstream = sse_data(
        [
            _chat_chunk({"role": "assistant", "reasoning_content": "a"}),
            _chat_chunk({"content": "b"}),
            _chat_chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}),
            _chat_chunk({}, "tool_calls"),
            _chat_chunk(
                None, usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
            ),
            b"[DONE]",
            b"[DONE]",
        ]
    )
    body, t = run(Format.OPENAI_CHAT, Format.CLAUDE, events_of(upstream))
    events = sse_events(body)
    shape = []
    for name, data in events:
        if name == "content_block_start":
            shape.append((name, data["index"], data["content_block"]["type"]))
        elif name == "content_block_delta":
            shape.append((name, data["index"], data["delta"]["type"]))
        elif name == "content_block_stop":
            shape.append((name, data["index"]))
        else:
            shape.append((name,))
    assert shape == [
        ("message_start",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2),
        ("message_delta",),
        ("message_stop",),
    ]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"input_tokens": 9, "output_tokens": 4}
    assert t.done


def test_worked_sequence_responses_client_gemini_upstream_thought_and_text():
    """translators.md §4.5 third sequence."""
    upstream = sse_data(
        [
            {"candidates": [{"content": {"parts": [{"thought": True, "text": "t"}]}}]},
            {"candidates": [{"content": {"parts": [{"text": "x"}]}}]},
            {
                "candidates": [{"content": {"parts": [{"text": "y"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
            },
        ]
    )
    t = translator(Format.GEMINI, Format.OPENAI_RESPONSES)
    per_chunk = [[e.event for e in events_of(b"".join(t.feed(ev)))] for ev in events_of(upstream)]
    assert per_chunk == [
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
        ],
        [
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ],
        [
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
    ]
    assert t.feed(SSEEvent(b"[DONE]")) == []


def test_responses_client_text_after_a_tool_call_is_a_new_message_item():
    upstream = sse_data(
        [
            {"candidates": [{"content": {"parts": [{"text": "a"}]}}]},
            {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}}]},
            {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}]},
        ]
    )
    body, _ = run(Format.GEMINI, Format.OPENAI_RESPONSES, events_of(upstream))
    seen = READERS[Format.OPENAI_RESPONSES](body)
    assert seen.text == "ab"
    final = sse_events(body)[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "function_call", "message"]
    assert len({item["id"] for item in final["output"]}) == 3


# --- ends without the terminal event ----------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_a_stream_cut_in_the_middle_ends_with_the_clients_error_event(s: Sample, client):
    events = events_of(s.body)
    body, t = run(s.provider, client, events[: len(events) // 2])
    seen = READERS[client](body)
    assert seen.error is not None
    assert "before the response was complete" in json.dumps(seen.error)
    assert t.done


# Claude and chat streams whose finish reason arrived are complete without their end marker;
# Responses and Gemini streams end with the event that carries the finish.
_COMPLETE_WITHOUT_LAST = {Format.CLAUDE: True, Format.OPENAI_CHAT: True}


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_finish_completes_a_stream_that_only_lacks_its_end_marker(s: Sample, client):
    body, t = run(s.provider, client, events_of(s.body)[:-1])
    seen = READERS[client](body)
    if _COMPLETE_WITHOUT_LAST.get(s.provider):
        assert_sees(client, seen, s)
    else:
        assert seen.error is not None
    assert t.done


# --- errors ---------------------------------------------------------------------------------


def _error_of(client: Format, body: bytes) -> dict[str, Any]:
    events = events_of(body)
    if client is Format.OPENAI_CHAT:
        assert b"[DONE]" not in body
        return json.loads(events[-1].data)
    if client is Format.OPENAI_RESPONSES:
        names = [e.event for e in events]
        assert "error" in names
        return json.loads(events[names.index("error")].data)
    assert events[-1].event == "error"
    return json.loads(events[-1].data)


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_error_mid_stream_is_the_clients_terminal_error_event(provider, client):
    events = events_of(sample(provider, "tool").body)
    t = translator(provider, client)
    out: list[bytes] = []
    for event in events[:2]:
        out += t.feed(event)
    out += t.error(429, "slow down")
    assert t.done
    assert t.feed(events[2]) == [] and t.finish() == [] and t.error(500, "again") == []
    body = b"".join(out)
    seen = READERS[client](body)
    assert seen.error is not None
    err = _error_of(client, body)
    if client is Format.OPENAI_CHAT:
        assert err["error"]["type"] == "rate_limit_error"
        assert err["error"]["message"] == "slow down"
    elif client is Format.CLAUDE:
        assert err == {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "slow down"},
        }
    elif client is Format.OPENAI_RESPONSES:
        assert (err["code"], err["message"]) == ("rate_limit_exceeded", "slow down")
        assert events_of(body)[-1].event == "response.failed"
    else:
        assert err["error"] == {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}


def test_error_message_may_be_an_upstream_json_body():
    t = translator(Format.GEMINI, Format.CLAUDE)
    upstream = b'{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}'
    body = b"".join(t.error(503, upstream.decode()))
    assert json.loads(events_of(body)[-1].data)["error"] == {
        "type": "api_error",
        "message": "The model is overloaded.",
    }


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
def test_error_event_before_any_translator(client):
    body = error_event(client, 401, "bad key")
    seen = READERS[client](body)
    assert seen.error is not None
    assert "bad key" in body.decode()


UPSTREAM_ERRORS = {
    Format.CLAUDE: (
        sse_named(
            [
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ]
        ),
        529,
        "Overloaded",
    ),
    Format.OPENAI_CHAT: (
        sse_data([{"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}]),
        429,
        "Rate limit reached",
    ),
    Format.OPENAI_RESPONSES: (
        sse_named(
            [
                {
                    "type": "response.failed",
                    "sequence_number": 3,
                    "response": {
                        "id": "resp_1",
                        "status": "failed",
                        "error": {"code": "server_error", "message": "Something broke"},
                    },
                }
            ]
        ),
        500,
        "Something broke",
    ),
    Format.GEMINI: (
        sse_data(
            [{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}]
        ),
        429,
        "Quota exceeded",
    ),
}


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_an_upstream_error_event_becomes_the_clients_error_event(provider, client):
    if provider is client:
        pytest.skip("pass-through relays the upstream error as is")
    head = events_of(sample(provider, "tool").body)[:2]
    failure, status, message = UPSTREAM_ERRORS[provider]
    body, t = run(provider, client, head + events_of(failure))
    seen = READERS[client](body)
    assert seen.error is not None
    assert message in json.dumps(seen.error)
    if client is Format.GEMINI:
        assert seen.error["code"] == status
    assert t.done


# --- bad input --------------------------------------------------------------------------------

_NOISE = {
    Format.CLAUDE: [
        b"event: content_block_delta\ndata: {not json\n\n",
        sse_named([{"type": "weird_new_event", "x": 1}]),
    ],
    Format.OPENAI_CHAT: [
        b"data: {not json\n\n",
        b": keep-alive\n\n",
        sse_data([{"id": "x", "choices": [{"index": 0, "delta": {"audio": {}}}]}]),
    ],
    Format.OPENAI_RESPONSES: [
        b"event: response.output_text.delta\ndata: nope\n\n",
        sse_named([{"type": "codex.rate_limits", "sequence_number": 99}]),
    ],
    Format.GEMINI: [
        b"data: {not json\n\n",
        sse_data([{"candidates": [{"content": {"parts": [{"executableCode": {"code": "1"}}]}}]}]),
    ],
}


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_invalid_json_and_unknown_events_are_skipped_and_the_stream_goes_on(provider, client):
    if provider is client:
        pytest.skip("pass-through relays what it does not need to read")
    s = sample(provider, "reasoning")
    events = events_of(s.body)
    noise = [e for chunk in _NOISE[provider] for e in events_of(chunk)]
    noisy = events[:2] + noise + events[2:]
    clean_body, _ = run(provider, client, events)
    noisy_body, t = run(provider, client, noisy)
    assert noisy_body == clean_body
    assert t.skipped == 1


def test_a_translator_bug_ends_the_stream_with_an_error_event_instead_of_raising():
    t = translator(Format.CLAUDE, Format.OPENAI_CHAT)
    out = t.feed(b"data: not an SSEEvent\n\n")  # type: ignore[arg-type]
    assert t.done
    err = json.loads(events_of(b"".join(out))[-1].data)
    assert err["error"]["type"] == "server_error"
    assert "translation failed" in err["error"]["message"]


def test_non_json_tool_arguments_reach_object_clients_wrapped():
    upstream = sse_data(
        [
            _chat_chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{'a': 1"}}
                    ]
                }
            ),
            _chat_chunk({}, "tool_calls"),
            b"[DONE]",
        ]
    )
    body, _ = run(Format.OPENAI_CHAT, Format.GEMINI, events_of(upstream))
    seen = READERS[Format.GEMINI](body)
    assert seen.tools == [("c1", "f", {"_raw": "{'a': 1"})]
    body, _ = run(Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, events_of(upstream))
    final = sse_events(body)[-1][1]["response"]
    assert final["output"][0]["arguments"] == "{'a': 1"


def test_tool_call_name_arriving_after_the_id_starts_the_call_once_known():
    upstream = sse_data(
        [
            _chat_chunk(
                {"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": '{"a"'}}]}
            ),
            _chat_chunk(
                {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}
            ),
            _chat_chunk({}, "tool_calls"),
            b"[DONE]",
        ]
    )
    body, _ = run(Format.OPENAI_CHAT, Format.CLAUDE, events_of(upstream))
    assert READERS[Format.CLAUDE](body).tools == [("c1", "f", {"a": 1})]


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_gemini_clients_without_alt_sse_get_one_json_array(provider):
    s = sample(provider, "tool")
    body, t = run(provider, Format.GEMINI, events_of(s.body), gemini_sse=False)
    seen = read_gemini_array(body)
    assert seen.text == s.expected.text
    assert seen.tool_calls() == s.expected.tools
    assert seen.finish == "STOP"
    assert t.done


def test_gemini_array_mode_error_closes_the_array():
    t = translator(Format.CLAUDE, Format.GEMINI, gemini_sse=False)
    out = []
    for event in events_of(sample(Format.CLAUDE, "tool").body)[:4]:
        out += t.feed(event)
    out += t.error(500, "boom")
    seen = read_gemini_array(b"".join(out))
    assert seen.error["message"] == "boom"
    assert seen.text == "Let me "


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_tool_names_map_upstream_names_back_to_the_clients(provider, client):
    if provider is client:
        pytest.skip("pass-through")
    body, _ = run(
        provider,
        client,
        events_of(sample(provider, "tool").body),
        tool_names={"get_weather": "mcp__weather__get_weather"},
    )
    assert [name for _, name, _ in READERS[client](body).tools] == ["mcp__weather__get_weather"]


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
def test_output_per_delta_does_not_grow_with_the_stream(client):
    """Cost per event stays proportional to that event: the 5000th delta costs the first's."""
    provider = Format.CLAUDE if client is not Format.CLAUDE else Format.OPENAI_CHAT
    t = translator(provider, client)
    head = events_of(sample(provider, "length").body)[:2]
    for event in head:
        t.feed(event)
    if provider is Format.CLAUDE:
        delta = events_of(
            sse_named(
                [
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "ab"},
                    }
                ]
            )
        )[0]
    else:
        delta = events_of(sse_data([_chat_chunk({"content": "ab"})]))[0]
    t.feed(delta)
    sizes = {sum(len(b) for b in t.feed(delta)) for _ in range(5000)}
    if client is Format.OPENAI_RESPONSES:
        # only the sequence number's digits grow (1 → 4 digits)
        assert max(sizes) - min(sizes) <= 3
    else:
        assert len(sizes) == 1


@pytest.mark.parametrize("client", CLIENTS, ids=[c.value for c in CLIENTS])
def test_parallel_tool_calls_from_chat_reach_every_client_in_order(client):
    def call(index, id=None, name=None, args=""):
        fn = {"arguments": args} | ({"name": name} if name else {})
        return {"index": index, **({"id": id} if id else {}), "function": fn}

    upstream = sse_data(
        [
            _chat_chunk({"role": "assistant", "content": None}),
            _chat_chunk({"tool_calls": [call(0, "call_a", "read", '{"pa')]}),
            _chat_chunk({"tool_calls": [call(0, args='th":"a"}')]}),
            _chat_chunk({"tool_calls": [call(1, "call_b", "read", '{"path":"b"}')]}),
            _chat_chunk({}, "tool_calls"),
            b"[DONE]",
        ]
    )
    body, _ = run(Format.OPENAI_CHAT, client, events_of(upstream))
    seen = READERS[client](body)
    assert seen.tool_calls() == [("read", {"path": "a"}), ("read", {"path": "b"})]
    assert [tool_id for tool_id, _, _ in seen.tools] == ["call_a", "call_b"]


# -- OpenAI tool calls that arrive oddly (CLIProxyAPI's OpenAI->Claude rules) ------------------


def _claude_events(chunks: list[dict]) -> list[dict]:
    import json as _json

    from cliproxy.formats import Format
    from cliproxy.formats.responses_side import stream_translator
    from cliproxy.formats.sse import SSEDecoder

    translator = stream_translator(Format.OPENAI_CHAT, Format.CLAUDE, model="m")
    wire = "".join(f"data: {_json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    decoder = SSEDecoder()
    out = b"".join(b"".join(translator.feed(ev)) for ev in decoder.feed(wire.encode()))
    out += b"".join(translator.finish())
    return [
        _json.loads(line[6:])
        for line in out.decode().splitlines()
        if line.startswith("data: ") and line[6:].startswith("{")
    ]


def _calls(*deltas: list[dict], finish: str = "tool_calls") -> list[dict]:
    chunks = [
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": d}}]}
        for d in deltas
    ]
    chunks.append(
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    )
    return chunks


def test_a_call_whose_id_comes_after_its_name_keeps_that_id():
    events = _claude_events(
        _calls(
            [{"index": 0, "function": {"name": "do_it"}}],
            [{"index": 0, "id": "call_real"}],
            [{"index": 0, "function": {"arguments": "{}"}}],
        )
    )
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(s["content_block"]["id"], s["content_block"]["name"]) for s in starts] == [
        ("call_real", "do_it")
    ]


def test_nameless_and_idless_calls_get_a_name_and_a_claude_id_in_index_order():
    events = _claude_events(
        _calls(
            [
                {"index": 1, "function": {"name": "second", "arguments": "{}"}},
                {"index": 0, "id": "call_a", "function": {"name": "", "arguments": '{"x":1}'}},
            ]
        )
    )
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["name"] for b in blocks] == ["tool_0", "second"]
    assert blocks[0]["id"] == "call_a" and blocks[1]["id"].startswith("toolu_")
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_an_empty_call_is_dropped_and_the_stop_is_not_tool_use():
    events = _claude_events(_calls([{"index": 0, "function": {"name": "", "arguments": ""}}]))
    assert not [e for e in events if e["type"] == "content_block_start"]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_codex_images_reach_chat_clients_once_each():
    import json as _json

    from cliproxy.formats import Format
    from cliproxy.formats.responses_side import stream_translator, translate_response
    from cliproxy.formats.sse import SSEDecoder

    partial = {
        "type": "response.image_generation_call.partial_image",
        "item_id": "ig_1",
        "output_format": "png",
        "partial_image_b64": "aGk=",
    }
    item = {"id": "ig_1", "type": "image_generation_call", "output_format": "webp"}
    events = [
        partial,
        partial,
        {"type": "response.output_item.done", "item": {**item, "result": "aGk="}},
        {"type": "response.output_item.done", "item": {**item, "result": "Ynll"}},
        {"type": "response.completed", "response": {"id": "r", "status": "completed"}},
    ]
    wire = "".join(f"data: {_json.dumps(e)}\n\n" for e in events).encode()
    translator = stream_translator(Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, model="m")
    out = b"".join(b"".join(translator.feed(ev)) for ev in SSEDecoder().feed(wire))
    chunks = [
        _json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: {")
    ]
    urls = [
        image["image_url"]["url"]
        for c in chunks
        for image in c["choices"][0]["delta"].get("images", [])
    ]
    assert urls == ["data:image/png;base64,aGk=", "data:image/webp;base64,Ynll"]
    whole = translate_response(
        Format.OPENAI_RESPONSES,
        Format.OPENAI_CHAT,
        {"id": "r", "status": "completed", "output": [{**item, "result": "Ynll"}]},
        model="m",
    )
    assert whole["choices"][0]["message"]["images"] == [
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,Ynll"}, "index": 0}
    ]
