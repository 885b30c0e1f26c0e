"""Chat Completions requests (as the OpenAI SDK sends them) into Claude, Gemini, Responses."""

from __future__ import annotations

import json

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import TranslationError, translate_request

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}


def chat_body(**extra):
    """A tool-using turn: system, user text + images, assistant call, tool result, follow-up."""
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's the weather where this was taken?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/p.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp":21}'},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": WEATHER_SCHEMA,
                    "strict": True,
                },
            }
        ],
        "tool_choice": "auto",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 2048,
        "stop": ["\n\nHuman:"],
        "reasoning_effort": "low",
        "user": "u-1",
    }
    body.update(extra)
    return body


def test_chat_to_claude_carries_the_conversation_and_settings():
    out = translate_request(
        Format.OPENAI_CHAT, Format.CLAUDE, chat_body(), model="claude-sonnet-4-5", stream=False
    )
    assert out["model"] == "claude-sonnet-4-5"
    assert out["stream"] is False
    assert out["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in English."},
    ]
    user, assistant, result = out["messages"]
    assert user["content"] == [
        {"type": "text", "text": "What's the weather where this was taken?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/p.jpg"}},
    ]
    assert assistant == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_abc",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
    }
    # the tool result and the follow-up question share one user turn, result first
    assert result["content"] == [
        {"type": "tool_result", "tool_use_id": "call_abc", "content": '{"temp":21}'},
        {"type": "text", "text": "And tomorrow?"},
    ]
    assert out["tools"] == [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}
    ]
    assert out["tool_choice"] == {"type": "auto"}
    assert out["max_tokens"] == 2048
    assert out["stop_sequences"] == ["\n\nHuman:"]
    assert out["metadata"] == {"user_id": "u-1"}


def test_chat_reasoning_on_claude_depends_on_the_model_caps():
    budget_caps = {"min": 1024, "max": 128000, "zero_allowed": True}
    body = chat_body(messages=[{"role": "user", "content": "hi"}], temperature=0.2)
    out = translate_request(
        Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=True, model_caps=budget_caps
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    # thinking forces temperature 1 and forbids temperature+top_p mixes
    assert out["temperature"] == 1
    assert "top_p" not in out

    adaptive = {
        "min": 1024,
        "max": 128000,
        "zero_allowed": True,
        "levels": ["low", "medium", "high"],
    }
    out = translate_request(
        Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=True, model_caps=adaptive
    )
    assert out["thinking"] == {"type": "adaptive"}
    assert out["output_config"] == {"effort": "low"}


def test_chat_tool_loop_without_signed_thinking_goes_to_claude_without_thinking():
    # Claude refuses a thinking request whose last tool turn has no signed thinking block.
    out = translate_request(
        Format.OPENAI_CHAT,
        Format.CLAUDE,
        chat_body(messages=chat_body()["messages"][:5]),
        model="m",
        stream=True,
        model_caps={"min": 1024, "max": 128000},
    )
    assert "thinking" not in out


def test_chat_to_gemini_keeps_limits_and_pairs_the_result_with_its_call():
    out = translate_request(
        Format.OPENAI_CHAT, Format.GEMINI, chat_body(), model="gemini-2.5-pro", stream=True
    )
    assert "model" not in out  # the model goes in the URL
    assert out["systemInstruction"] == {
        "parts": [{"text": "You are terse."}, {"text": "Answer in English."}]
    }
    user, model, answer = out["contents"]
    assert user["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert user["parts"][2] == {
        "fileData": {"fileUri": "https://example.com/p.jpg", "mimeType": "image/jpeg"}
    }
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "skip_thought_signature_validator",
            }
        ],
    }
    assert answer["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"text": "And tomorrow?"},
    ]
    assert "id" not in model["parts"][0]["functionCall"]
    gen = out["generationConfig"]
    assert gen["maxOutputTokens"] == 2048
    assert gen["stopSequences"] == ["\n\nHuman:"]
    assert gen["temperature"] == 0.2 and gen["topP"] == 0.9
    assert gen["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    decl = out["tools"][0]["functionDeclarations"][0]
    # cleaned for Gemini: enum hint kept, additionalProperties gone
    assert decl["parametersJsonSchema"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "Allowed: c, f"},
        },
        "required": ["city"],
        "description": "No extra properties allowed",
    }
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert len(out["safetySettings"]) == 5


def test_chat_to_responses_uses_items_and_non_strict_tools():
    out = translate_request(
        Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, chat_body(), model="gpt-5", stream=True
    )
    assert out["model"] == "gpt-5" and out["stream"] is True
    kinds = [(i["type"], i.get("role")) for i in out["input"]]
    assert kinds == [
        ("message", "developer"),
        ("message", "developer"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "user"),
    ]
    assert out["input"][2]["content"][1] == {
        "type": "input_image",
        "image_url": f"data:image/png;base64,{PNG}",
        "detail": "high",
    }
    assert out["input"][3] == {
        "type": "function_call",
        "call_id": "call_abc",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert out["input"][4]["output"] == '{"temp":21}'
    assert out["tools"][0]["strict"] is False
    assert out["reasoning"] == {"effort": "low"}
    assert out["max_output_tokens"] == 2048


def test_chat_response_format_json_schema_reaches_every_target():
    rf = {"type": "json_schema", "json_schema": {"name": "Out", "schema": WEATHER_SCHEMA}}
    body = chat_body(response_format=rf, messages=[{"role": "user", "content": "hi"}])
    claude = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    assert claude["output_config"]["format"] == {"type": "json_schema", "schema": WEATHER_SCHEMA}
    gemini = translate_request(Format.OPENAI_CHAT, Format.GEMINI, body, model="m", stream=False)
    assert gemini["generationConfig"]["responseMimeType"] == "application/json"
    # responseJsonSchema honours additionalProperties (tool schemas drop it)
    assert gemini["generationConfig"]["responseJsonSchema"]["additionalProperties"] is False
    resp = translate_request(
        Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, body, model="m", stream=False
    )
    assert resp["text"] == {
        "format": {"type": "json_schema", "name": "Out", "schema": WEATHER_SCHEMA}
    }


def test_same_format_only_sets_the_model():
    body = chat_body()
    out = translate_request(Format.OPENAI_CHAT, Format.OPENAI_CHAT, body, model="x", stream=True)
    assert out == {**body, "model": "x"}
    assert body["model"] == "gpt-4o"  # the client's dict is untouched


def test_unknown_parts_are_dropped_and_legacy_function_calls_pair_up():
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "hologram", "x": 1}, {"type": "text", "text": "a"}],
            },
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "r"},
        ]
    }
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    user, call, result = out["messages"]
    assert user["content"] == [{"type": "text", "text": "a"}]
    tool_id = call["content"][0]["id"]
    assert result["content"] == [{"type": "tool_result", "tool_use_id": tool_id, "content": "r"}]


def test_missing_tool_call_ids_are_deterministic():
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]},
        ]
    }
    one = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    two = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    assert one == two
    assert one["messages"][1]["content"][0]["id"].startswith("call_")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": "hi"}, "messages"),
        ({}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [], "tools": {"a": 1}}, "tools"),
        ([1, 2], "JSON object"),
    ],
)
def test_structurally_wrong_bodies_name_the_field(body, field):
    with pytest.raises(TranslationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        translate_request(Format.OPENAI_CHAT, Format.GEMINI, body, model="m", stream=False)


def test_call_ids_reused_across_turns_are_made_unique_and_stay_paired():
    def turn(arg):
        return [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "f", "arguments": arg},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "r" + arg},
        ]

    body = {"messages": [{"role": "user", "content": "go"}, *turn('{"n":1}'), *turn('{"n":2}')]}
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    calls = [b for m in out["messages"] for b in m["content"] if b["type"] == "tool_use"]
    results = [b for m in out["messages"] for b in m["content"] if b["type"] == "tool_result"]
    assert [c["id"] for c in calls] == ["call_0", "call_0_2"]
    assert [(r["tool_use_id"], r["content"]) for r in results] == [
        ("call_0", 'r{"n":1}'),
        ("call_0_2", 'r{"n":2}'),
    ]


def test_chat_cache_control_and_metadata_user_reach_claude():
    body = {
        "metadata": {"user_id": "u-1"},
        "messages": [
            {"role": "system", "content": "rules", "cache_control": {"type": "ephemeral"}},
            {
                "role": "user",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
                "content": [
                    {"type": "text", "text": "own", "cache_control": {"type": "ephemeral"}},
                ],
            },
            {"role": "user", "content": "second", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object"}},
                "cache_control": {"type": "ephemeral"},
            }
        ],
    }
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="c", stream=False)
    assert out["system"] == [
        {"type": "text", "text": "rules", "cache_control": {"type": "ephemeral"}}
    ]
    blocks = out["messages"][0]["content"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"}  # the part's own wins
    assert blocks[1]["cache_control"] == {"type": "ephemeral"}
    assert out["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert out["metadata"] == {"user_id": "u-1"}
    # other targets never see cache_control
    gemini = translate_request(Format.OPENAI_CHAT, Format.GEMINI, body, model="g", stream=False)
    assert "cache_control" not in json.dumps(gemini)


@pytest.mark.parametrize("target", [Format.CLAUDE, Format.GEMINI, Format.OPENAI_RESPONSES])
def test_max_tokens_wins_over_max_completion_tokens(target):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 40}
    out = translate_request(Format.OPENAI_CHAT, target, body, model="m", stream=False)
    key = {
        Format.CLAUDE: lambda o: o["max_tokens"],
        Format.GEMINI: lambda o: o["generationConfig"]["maxOutputTokens"],
        Format.OPENAI_RESPONSES: lambda o: o["max_output_tokens"],
    }[target]
    assert key(out) == 40
    body["max_tokens"] = 30
    out = translate_request(Format.OPENAI_CHAT, target, body, model="m", stream=False)
    assert key(out) == 30


def test_a_repeated_tool_result_keeps_the_last_answer_in_the_first_place():
    call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "first"},
            {"role": "assistant", "content": "again"},
            {"role": "tool", "tool_call_id": "c1", "content": "final"},
            {"role": "user", "content": "done?"},
        ]
    }
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="m", stream=False)
    results = [
        b
        for m in out["messages"]
        for b in m["content"]
        if isinstance(b, dict) and b["type"] == "tool_result"
    ]
    assert results == [{"type": "tool_result", "tool_use_id": "c1", "content": "final"}]
    assert out["messages"][2]["content"][0] == results[0]
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    # per-turn ids reused by a client (call_0 every turn) are distinct calls, not repeats
    reuse = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{**call, "id": "call_0"}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "one"},
            {"role": "assistant", "tool_calls": [{**call, "id": "call_0"}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "two"},
        ]
    }
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, reuse, model="m", stream=False)
    answers = [
        p["functionResponse"]["response"]["result"]
        for c in out["contents"]
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert answers == ["one", "two"]


def test_a_gemini_generation_config_in_a_chat_body_supplies_missing_settings():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.1,
        "generationConfig": {
            "temperature": 0.9,
            "topK": 5,
            "maxOutputTokens": 77,
            "responseSchema": {"type": "string"},
        },
        "response_format": {"type": "json_object"},
    }
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, body, model="g", stream=False)
    assert out["generationConfig"] == {
        "temperature": 0.1,  # the Chat field wins
        "topK": 5,
        "maxOutputTokens": 77,
        "responseMimeType": "application/json",
    }
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, body, model="c", stream=False)
    assert (out["max_tokens"], out["top_k"]) == (77, 5)
    body["generationConfig"] = "not an object"
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, body, model="g", stream=False)
    assert "topK" not in out["generationConfig"]
