"""generateContent requests (google-genai SDK and Gemini CLI shapes) and Gemini targets."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import TranslationError, translate_request

JPEG = "/9j/4AAQSkZJRgABAQ=="


def gemini_body(**extra):
    body = {
        "systemInstruction": {"role": "user", "parts": [{"text": "You are helpful."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Describe and look up."},
                    {"inlineData": {"mimeType": "image/jpeg", "data": JPEG}},
                    {
                        "fileData": {
                            "mimeType": "application/pdf",
                            "fileUri": "https://x.test/doc.pdf",
                        }
                    },
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True, "thoughtSignature": "CiQBsig"},
                    {
                        "functionCall": {"name": "search", "args": {"q": "cats"}},
                        "thoughtSignature": "CiQBsig",
                    },
                    {"functionCall": {"name": "search", "args": {"q": "dogs"}}},
                    {"functionCall": {"name": "lookup", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "search", "response": {"result": "cats found"}}},
                    {"functionResponse": {"name": "search", "response": {"output": "dogs found"}}},
                    {"functionResponse": {"name": "lookup", "response": {"hits": 3}}},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "search",
                        "description": "Search",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"q": {"type": "STRING"}},
                            "required": ["q"],
                        },
                    },
                    {
                        "name": "lookup",
                        "parametersJsonSchema": {"type": "object", "properties": {}},
                    },
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search"]}
        },
        "generationConfig": {
            "temperature": 0.7,
            "topP": 0.95,
            "topK": 40,
            "maxOutputTokens": 4096,
            "stopSequences": ["END"],
            "candidateCount": 1,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    body.update(extra)
    return body


def test_gemini_to_claude():
    out = translate_request(Format.GEMINI, Format.CLAUDE, gemini_body(), model="c", stream=True)
    assert out["system"] == [{"type": "text", "text": "You are helpful."}]
    user, model, answer = out["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
    }
    assert user["content"][2] == {
        "type": "document",
        "source": {"type": "url", "url": "https://x.test/doc.pdf"},
    }
    # the Gemini thought cannot be replayed to Claude; the calls get distinct, paired ids
    assert [b["type"] for b in model["content"]] == ["tool_use", "tool_use", "tool_use"]
    ids = [b["id"] for b in model["content"]]
    assert len(set(ids)) == 3
    assert [(r["tool_use_id"], r["content"]) for r in answer["content"]] == [
        (ids[0], "cats found"),
        (ids[1], "dogs found"),
        (ids[2], '{"hits":3}'),
    ]
    assert out["tools"][0]["input_schema"] == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
    }
    assert out["tools"][2]["type"] == "web_search_20250305"
    assert out["tool_choice"] == {"type": "tool", "name": "search"}
    # a forced tool choice cannot go with thinking on Claude
    assert "thinking" not in out
    assert out["max_tokens"] == 4096 and out["stop_sequences"] == ["END"]
    assert out["top_k"] == 40 and out["temperature"] == 0.7 and "top_p" not in out
    assert out["output_config"]["format"] == {
        "type": "json_schema",
        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }


def test_gemini_to_chat_and_responses():
    body = gemini_body(toolConfig={"functionCallingConfig": {"mode": "AUTO"}})
    chat = translate_request(Format.GEMINI, Format.OPENAI_CHAT, body, model="o", stream=False)
    assert chat["messages"][0] == {"role": "system", "content": "You are helpful."}
    parts = chat["messages"][1]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}}
    # a remote PDF has no Chat form: a note stands in for it
    assert parts[2] == {
        "type": "text",
        "text": "File: https://x.test/doc.pdf (Type: application/pdf)",
    }
    assistant = chat["messages"][2]
    assert "reasoning_content" not in assistant  # Gemini-signed thought
    # the Gemini signature rides along the way Gemini's OpenAI endpoint expects it
    assert assistant["tool_calls"][0]["extra_content"] == {
        "google": {"thought_signature": "CiQBsig"}
    }
    tool_msgs = [m for m in chat["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [c["id"] for c in assistant["tool_calls"]]
    assert chat["reasoning_effort"] == "medium"
    assert chat["top_k"] == 40 and chat["stop"] == ["END"] and chat["max_tokens"] == 4096
    assert chat["tool_choice"] == "auto"
    assert chat["response_format"]["type"] == "json_schema"

    resp = translate_request(Format.GEMINI, Format.OPENAI_RESPONSES, body, model="o", stream=False)
    calls = [i for i in resp["input"] if i["type"] == "function_call"]
    outs = [i for i in resp["input"] if i["type"] == "function_call_output"]
    assert [c["call_id"] for c in calls] == [o["call_id"] for o in outs]
    assert resp["input"][1]["content"][2] == {
        "type": "input_file",
        "file_url": "https://x.test/doc.pdf",
    }


def test_chat_results_out_of_order_reach_gemini_in_call_order():
    chat = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "a",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"n":1}'},
                    },
                    {
                        "id": "b",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"n":2}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "b", "content": "two"},
            {"role": "tool", "tool_call_id": "a", "content": "one"},
        ]
    }
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, chat, model="g", stream=False)
    answers = [p["functionResponse"]["response"] for p in out["contents"][2]["parts"]]
    assert answers == [{"result": "one"}, {"result": "two"}]


def test_function_response_name_comes_from_the_matching_call():
    claude = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "mcp__fs__read",
                        "input": {"p": "/"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "[]"}],
            },
        ],
    }
    out = translate_request(Format.CLAUDE, Format.GEMINI, claude, model="g", stream=False)
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "mcp__fs__read", "response": {"result": "[]"}}}
    ]


def test_dangling_call_is_left_out_and_names_are_sanitised():
    chat = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {
                        "id": "a",
                        "type": "function",
                        "function": {"name": "9 bad/name", "arguments": "{}"},
                    }
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "9 bad/name"}}],
    }
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, chat, model="g", stream=False)
    # the whole trailing model turn goes (a prefill Gemini does not take), not only the call
    assert out["contents"] == [{"role": "user", "parts": [{"text": "go"}]}]
    assert out["tools"][0]["functionDeclarations"][0]["name"] == "_9_bad_name"
    chat["messages"][1] = {"role": "assistant", "content": "Sure, the answer is"}
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, chat, model="g", stream=False)
    assert [c["role"] for c in out["contents"]] == ["user"]
    lone = {"messages": [{"role": "assistant", "content": "hello"}]}
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, lone, model="g", stream=False)
    assert out["contents"] == [{"role": "model", "parts": [{"text": "hello"}]}]


def test_video_reaches_gemini_and_openai_compatible_servers():
    video = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}
    chat = {"messages": [{"role": "user", "content": [video, {"type": "text", "text": "what?"}]}]}
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, chat, model="g", stream=False)
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "video/mp4", "data": "AAAA"}},
        {"text": "what?"},
    ]
    back = translate_request(Format.GEMINI, Format.OPENAI_CHAT, out, model="o", stream=False)
    assert back["messages"][0]["content"][0] == video


def test_gemini_cli_envelope_is_unwrapped():
    wrapped = {"model": "gemini-2.5-pro", "project": "p", "request": gemini_body()}
    out = translate_request(Format.GEMINI, Format.OPENAI_CHAT, wrapped, model="o", stream=False)
    assert out["messages"][0]["content"] == "You are helpful."


def test_snake_case_fields_are_read():
    body = {
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}
        ],
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
        "generation_config": {
            "max_output_tokens": 9,
            "thinking_config": {"thinking_level": "HIGH"},
        },
        "tools": [{"function_declarations": [{"name": "f"}]}],
    }
    out = translate_request(Format.GEMINI, Format.OPENAI_CHAT, body, model="o", stream=False)
    assert out["messages"][0] == {"role": "system", "content": "sys"}
    assert out["messages"][1]["content"][0]["image_url"]["url"] == "data:image/png;base64,AA=="
    assert out["tool_choice"] == "none" and out["max_tokens"] == 9
    assert out["reasoning_effort"] == "high"


def test_gemini_passthrough_does_not_add_a_model():
    body = gemini_body()
    assert translate_request(Format.GEMINI, Format.GEMINI, body, model="g", stream=True) == body


@pytest.mark.parametrize(
    "body", [{}, {"contents": {}}, {"contents": ["x"]}, {"contents": [{"parts": 3}]}]
)
def test_bad_gemini_bodies(body):
    with pytest.raises(TranslationError):
        translate_request(Format.GEMINI, Format.CLAUDE, body, model="c", stream=False)


def _router_call() -> dict:
    """Shaped like the Gemini CLI's model-router call: a Gemini-dialect response schema."""
    schema = {
        "type": "OBJECT",
        "propertyOrdering": ["reasoning", "model_choice"],
        "properties": {
            "reasoning": {"type": "STRING", "example": "because"},
            "model_choice": {"anyOf": [{"type": "STRING", "enum": ["flash", "pro"]}]},
        },
        "required": ["reasoning", "model_choice"],
    }
    tool = {
        "name": "pick",
        "parametersJsonSchema": {
            "type": "OBJECT",
            "properties": {"n": {"type": "INTEGER", "nullable": True}},
            "propertyOrdering": ["n"],
        },
    }
    return {
        "contents": [{"role": "user", "parts": [{"text": "route this"}]}],
        "tools": [{"functionDeclarations": [tool]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }


def _walk(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "type":
                found.append(v)
            if k in ("propertyOrdering", "nullable", "example"):
                found.append(k)
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)


@pytest.mark.parametrize("target", [Format.CLAUDE, Format.OPENAI_CHAT, Format.OPENAI_RESPONSES])
@pytest.mark.parametrize("stream", [False, True])
def test_gemini_dialect_schemas_reach_json_schema_targets_cleaned(target, stream):
    out = translate_request(Format.GEMINI, target, _router_call(), model="m", stream=stream)
    found: list = []
    _walk(out, found)
    schema_types = [t for t in found if t not in ("function", "json_schema", "custom", "text")]
    assert "object" in str(schema_types) and "integer" in str(schema_types)
    for t in schema_types:
        for name in t if isinstance(t, list) else [t]:
            assert name == name.lower(), out
    assert "propertyOrdering" not in found and "example" not in found and "nullable" not in found


def test_gemini_to_gemini_fills_empty_function_response_names_from_the_calls():
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "Read", "args": {}}},
                    {"functionCall": {"name": "Grep", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "", "response": {"result": "a"}}},
                    {"functionResponse": {"response": {"result": "b"}}},
                ],
            },
        ]
    }
    out = translate_request(Format.GEMINI, Format.GEMINI, body, model="g", stream=False)
    names = [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]]
    assert names == ["Read", "Grep"]
    assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == ""  # not modified
    untouched = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert (
        translate_request(Format.GEMINI, Format.GEMINI, untouched, model="g", stream=False)[
            "contents"
        ]
        is untouched["contents"]
    )


@pytest.mark.parametrize("key", ["id", "call_id", "callId"])
def test_explicit_call_ids_reach_chat(key):
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "look"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "lookup", key: "call_gw_1", "args": {}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "lookup", key: "call_gw_1", "response": {}}}
                ],
            },
        ]
    }
    chat = translate_request(Format.GEMINI, Format.OPENAI_CHAT, body, model="o", stream=False)
    assert chat["messages"][1]["tool_calls"][0]["id"] == "call_gw_1"
    assert chat["messages"][2]["tool_call_id"] == "call_gw_1"


def test_a_thought_only_model_turn_is_not_an_empty_assistant_message():
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"thought": True, "text": "hmm", "thoughtSignature": "x"}]},
            {"role": "user", "parts": [{"text": "continue"}]},
        ]
    }
    chat = translate_request(Format.GEMINI, Format.OPENAI_CHAT, body, model="o", stream=False)
    assert chat["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "continue"},
    ]
