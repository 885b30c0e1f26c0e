"""The provider builders and the default-answer policy, as pure functions."""

import json

from tests.fakes import (
    Ask,
    ToolCall,
    Turn,
    Usage,
    chat_ask,
    chat_chunks,
    chat_completion,
    claude_ask,
    claude_events,
    claude_message,
    decide,
    gemini_ask,
    gemini_chunks,
    gemini_response,
    placeholder_args,
    response_events,
    response_object,
    responses_ask,
)

TOOL_TURN = Turn(text="Hi", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])


def test_claude_stream_matches_the_worked_sequence():
    events = claude_events(TOOL_TURN, "claude-x")
    names = [e.event for e in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(e.data["type"] == e.event for e in events)
    tool_start = events[5].data
    assert tool_start["index"] == 1
    assert tool_start["content_block"]["name"] == "get_weather"
    partial = "".join(e.data["delta"]["partial_json"] for e in events[6:10])
    assert json.loads(partial) == {"city": "Paris"}
    assert events[-2].data["delta"]["stop_reason"] == "tool_use"
    assert events[0].data["message"]["model"] == "claude-x"


def test_claude_message_with_thinking_text_and_tool():
    turn = Turn(reasoning="hmm", text="ok", tool_calls=[ToolCall("f", {})], usage=Usage(3, 4))
    body = claude_message(turn, "m", id="msg_1")
    assert [b["type"] for b in body["content"]] == ["thinking", "text", "tool_use"]
    assert body["content"][0]["signature"] == turn.signature
    assert body["stop_reason"] == "tool_use"
    assert body["usage"]["input_tokens"] == 3 and body["usage"]["output_tokens"] == 4
    thinking = claude_events(Turn(reasoning="a b", text="c"), "m")
    deltas = [e.data["delta"]["type"] for e in thinking if e.event == "content_block_delta"]
    assert deltas == ["thinking_delta", "thinking_delta", "signature_delta", "text_delta"]


def test_chat_chunks_stream_a_tool_call_and_end_with_usage_and_done():
    events = chat_chunks(TOOL_TURN, "gpt-x", include_usage=True)
    assert events[-1].data == "[DONE]"
    usage_chunk = events[-2].data
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] == 15
    assert all(e.data["usage"] is None for e in events[:-2])
    calls = [c for e in events[:-2] for c in e.data["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "call_fake_01" and calls[0]["function"]["name"] == "get_weather"
    args = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(args) == {"city": "Paris"}
    finish = [e.data["choices"][0]["finish_reason"] for e in events[:-2]]
    assert finish[-1] == "tool_calls" and set(finish[:-1]) == {None}
    whole = chat_completion(TOOL_TURN, "gpt-x")
    assert whole["choices"][0]["message"]["content"] == "Hi"
    assert whole["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_chunks_without_usage_have_no_usage_field():
    events = chat_chunks(Turn(text="a b", reasoning="r"), "m")
    assert all("usage" not in e.data for e in events[:-1])
    deltas = [e.data["choices"][0]["delta"] for e in events[:-1]]
    assert deltas[1] == {"reasoning_content": "r"}
    assert [d.get("content") for d in deltas[2:4]] == ["a", " b"]


def test_response_events_are_numbered_and_complete():
    turn = Turn(reasoning="think", text="answer", tool_calls=[ToolCall("f", {"x": 1})])
    events = response_events(turn, "gpt-x")
    assert [e.data["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0].event == "response.created" and events[-1].event == "response.completed"
    done = [e.data["item"]["type"] for e in events if e.event == "response.output_item.done"]
    assert done == ["reasoning", "message", "function_call"]
    assert [i["type"] for i in events[-1].data["response"]["output"]] == done
    empty = response_events(turn, "gpt-x", empty_completed_output=True)
    assert empty[-1].data["response"]["output"] == []
    capped = response_object(Turn(text="x", stop="max_tokens"), "m")
    assert capped["status"] == "incomplete"


def test_gemini_chunks_put_usage_and_finish_on_the_last_chunk():
    chunks = gemini_chunks(Turn(reasoning="t", text="x y"), "gemini-x")
    assert [c["candidates"][0]["content"]["parts"][0].get("thought") for c in chunks] == [
        True,
        None,
        None,
    ]
    assert chunks[1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 10
    whole = gemini_response(TOOL_TURN, "gemini-x")
    parts = whole["candidates"][0]["content"]["parts"]
    assert parts[1] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}


def test_placeholder_args_follow_the_schema():
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "n": {"type": "integer"},
            "e": {"enum": ["a", "b"]},
            "o": {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            "skip": {"type": "string"},
        },
        "required": ["s", "n", "e", "o"],
    }
    assert placeholder_args(schema) == {"s": "test", "n": 1, "e": "a", "o": {"b": True}}


def test_decide_calls_a_tool_only_when_asked_and_not_after_a_result():
    tools = [("search", {}), ("get_weather", {"required": ["city"]})]
    ask = Ask(tools=tools, last_user_text="please check get_weather")
    assert decide(ask, "hi", "r").tool_calls[0].name == "get_weather"
    assert decide(Ask(tools=tools, last_user_text="use a tool"), "hi", "r").tool_calls[0].name == (
        "search"
    )
    assert decide(Ask(tools=tools, last_user_text="hello"), "hi", "r").text == "hi"
    after = Ask(tools=tools, last_user_text="use a tool", last_is_tool_result=True)
    assert decide(after, "hi", "r").tool_calls == []
    forced = Ask(tools=tools, forced_tool="get_weather")
    assert decide(forced, "hi", "r").tool_calls[0].args == {"city": "test"}
    assert decide(Ask(wants_reasoning=True), "hi", "think").reasoning == "think"


def test_request_readers_understand_each_provider():
    claude = claude_ask(
        {
            "model": "c",
            "stream": True,
            "tools": [{"name": "t", "input_schema": {}}],
            "tool_choice": {"type": "tool", "name": "t"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "go"}]}],
        }
    )
    assert (claude.model, claude.stream, claude.forced_tool, claude.wants_reasoning) == (
        "c",
        True,
        "t",
        True,
    )
    chat = chat_ask(
        {
            "model": "g",
            "messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}],
            "tools": [{"type": "function", "function": {"name": "t"}}],
            "tool_choice": "required",
            "reasoning_effort": "high",
        }
    )
    assert chat.last_is_tool_result and chat.forced_tool == "any" and chat.wants_reasoning
    resp = responses_ask({"model": "r", "input": "hello", "reasoning": {"effort": "low"}})
    assert resp.last_user_text == "hello" and resp.wants_reasoning
    gem = gemini_ask(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "t"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
        },
        "gemini-x",
    )
    assert (gem.model, gem.forced_tool, gem.wants_reasoning) == ("gemini-x", "any", True)
