"""Codex freeform tool calls, Claude `sensitive` stops and cache-write usage in Chat answers."""

from __future__ import annotations

import json

from cliproxy.formats import Format
from cliproxy.formats.responses_side import stream_translator, translate_response
from cliproxy.formats.sse import SSEDecoder


def _chat_stream(provider: Format, events: list[dict]) -> list[dict]:
    t = stream_translator(provider, Format.OPENAI_CHAT, model="m")
    wire = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
    dec = SSEDecoder()
    out = b"".join(b for ev in dec.feed(wire) for b in t.feed(ev)) + b"".join(t.finish())
    return [json.loads(line[6:]) for line in out.decode().split("\n") if line.startswith("data: {")]


def test_codex_custom_tool_call_reaches_chat_as_a_function_call():
    item = {"type": "custom_tool_call", "call_id": "call_p", "name": "ApplyPatch", "input": ""}
    chunks = _chat_stream(
        Format.OPENAI_RESPONSES,
        [
            {"type": "response.output_item.added", "item": item},
            {"type": "response.custom_tool_call_input.delta", "delta": "*** Begin"},
            {"type": "response.custom_tool_call_input.done", "input": "*** Begin"},
            {"type": "response.output_item.done", "item": {**item, "input": "*** Begin"}},
            {"type": "response.completed", "response": {"usage": {"input_tokens": 1}}},
        ],
    )
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c.get("choices")]
    calls = [c[0] for c in calls if c]
    assert calls[0]["id"] == "call_p" and calls[0]["function"]["name"] == "ApplyPatch"
    assert "".join(c["function"].get("arguments", "") for c in calls) == "*** Begin"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    whole = {
        "output": [{**item, "input": "patch"}],
        "usage": {"input_tokens": 3, "input_tokens_details": {"cache_write_tokens": 2}},
    }
    body = translate_response(Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, whole, model="m")
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert (call["id"], call["function"]["arguments"]) == ("call_p", "patch")
    assert body["usage"]["prompt_tokens_details"]["cached_creation_tokens"] == 2


def test_claude_sensitive_stop_is_a_content_filter_and_cache_writes_are_reported():
    chunks = _chat_stream(
        Format.CLAUDE,
        [
            {"type": "message_start", "message": {"id": "msg", "usage": {"input_tokens": 1}}},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "sensitive"},
                "usage": {"output_tokens": 2, "cache_creation_input_tokens": 7},
            },
            {"type": "message_stop"},
        ],
    )
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "content_filter"
    assert last["usage"]["prompt_tokens_details"]["cached_creation_tokens"] == 7
