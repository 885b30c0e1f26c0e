"""Messages requests (as Claude Code and the Anthropic SDK send them) into the other formats."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import TranslationError, translate_request

CLAUDE_SIG = "EqQBCkYIBRgCKkBx" + "A" * 60
GIF = "R0lGODlhAQABAAAAACw="


def claude_code_body(**extra):
    body = {
        "model": "claude-opus-4-6",
        "max_tokens": 32000,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.0; cc_entrypoint=cli",
            },
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {"role": "system", "content": "Mid-session reminder."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Fix the bug in this screenshot."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": GIF},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "Look at main.py first.",
                        "signature": CLAUDE_SIG,
                    },
                    {"type": "text", "text": "Reading the file."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "Read",
                        "input": {"file_path": "/src/main.py"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01B",
                        "name": "Bash",
                        "input": {"command": "false"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": [{"type": "text", "text": "print('hi')"}],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "is_error": True,
                        "content": "exit 1",
                    },
                    {"type": "text", "text": "<system-reminder>todo list empty</system-reminder>"},
                ],
            },
        ],
        "tools": [
            {
                "name": "Read",
                "description": "Read a file",
                "input_schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {
                        "file_path": {"type": "string"},
                        "limit": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "required": ["file_path", "limit"],
                    "additionalProperties": False,
                },
            },
            {
                "name": "Bash",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        ],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "metadata": {"user_id": "user_abc_account_def_session_ghi"},
        "stream": True,
        "temperature": 1,
    }
    body.update(extra)
    return body


def test_claude_code_body_to_chat():
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_CHAT, claude_code_body(), model="o", stream=True
    )
    msgs = out["messages"]
    # billing attribution is dropped; the system entry inside messages becomes, in place, a
    # user turn of its own wrapped as a reminder (the next user turn is not merged into it)
    assert msgs[0] == {"role": "system", "content": "You are Claude Code."}
    assert msgs[1] == {
        "role": "user",
        "content": "<system-reminder>\nMid-session reminder.\n</system-reminder>",
    }
    assert msgs[2]["role"] == "user"
    assert msgs[2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/gif;base64,{GIF}"},
    }
    assistant = msgs[3]
    assert assistant["content"] == "Reading the file."
    assert "reasoning_content" not in assistant  # a Claude signature means nothing elsewhere
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["Read", "Bash"]
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"file_path":"/src/main.py"}'
    assert msgs[4] == {"role": "tool", "tool_call_id": "toolu_01A", "content": "print('hi')"}
    assert msgs[5] == {"role": "tool", "tool_call_id": "toolu_01B", "content": "Error: exit 1"}
    assert msgs[6] == {
        "role": "user",
        "content": "<system-reminder>todo list empty</system-reminder>",
    }
    # adaptive thinking with an effort is that effort; only function tools survive
    assert out["reasoning_effort"] == "medium"
    assert [t["function"]["name"] for t in out["tools"]] == ["Read", "Bash"]
    assert out["stream_options"] == {"include_usage": True}
    assert "context_management" not in out


def test_claude_code_body_to_gemini_cleans_schemas_and_recovers_names():
    out = translate_request(
        Format.CLAUDE, Format.GEMINI, claude_code_body(), model="g", stream=True
    )
    assert out["systemInstruction"]["parts"] == [{"text": "You are Claude Code."}]
    reminder, user, model, answer = out["contents"]
    assert reminder == {
        "role": "user",
        "parts": [{"text": "<system-reminder>\nMid-session reminder.\n</system-reminder>"}],
    }
    assert user["parts"][1] == {"inlineData": {"mimeType": "image/gif", "data": GIF}}
    assert [p.get("text") for p in model["parts"]] == ["Reading the file.", None, None]
    assert answer["parts"][:2] == [
        {"functionResponse": {"name": "Read", "response": {"result": "print('hi')"}}},
        {"functionResponse": {"name": "Bash", "response": {"error": "exit 1"}}},
    ]
    read = out["tools"][0]["functionDeclarations"][0]
    assert read["parametersJsonSchema"] == {
        "type": "object",
        "properties": {
            "file_path": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "description": "nullable"},
        },
        "required": ["file_path"],
        "description": "No extra properties allowed",
    }
    assert out["tools"][1] == {"googleSearch": {}}
    assert len(out["tools"]) == 2  # the Anthropic-defined editor tool is dropped
    # unknown model: a level becomes a budget for Gemini
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 8192,
        "includeThoughts": True,
    }
    gemini3 = {"min": 128, "max": 32768, "dynamic_allowed": True, "levels": ["low", "high"]}
    out = translate_request(
        Format.CLAUDE, Format.GEMINI, claude_code_body(), model="g", stream=True, model_caps=gemini3
    )
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "low",
        "includeThoughts": True,
    }


def test_claude_code_body_to_responses():
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, claude_code_body(), model="gpt-5", stream=True
    )
    kinds = [i["type"] for i in out["input"]]
    assert kinds == [
        "message",
        "message",
        "message",
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]
    assert out["input"][0]["role"] == "developer"
    assert out["input"][2]["content"][1]["image_url"] == f"data:image/gif;base64,{GIF}"
    assert out["input"][3] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Reading the file."}],
    }
    assert out["input"][7]["output"] == "Error: exit 1"
    assert out["tools"][2] == {"type": "web_search"}
    assert out["reasoning"] == {"effort": "medium", "summary": "auto"}


def test_claude_budget_thinking_maps_to_levels_and_budgets():
    body = claude_code_body(thinking={"type": "enabled", "budget_tokens": 5000})
    del body["output_config"]
    chat = translate_request(Format.CLAUDE, Format.OPENAI_CHAT, body, model="o", stream=False)
    assert chat["reasoning_effort"] == "medium"
    gem = translate_request(Format.CLAUDE, Format.GEMINI, body, model="g", stream=False)
    assert gem["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 5000,
        "includeThoughts": True,
    }
    off = translate_request(
        Format.CLAUDE,
        Format.OPENAI_CHAT,
        claude_code_body(thinking={"type": "disabled"}, output_config={}),
        model="o",
        stream=False,
    )
    assert off["reasoning_effort"] == "none"


def test_gemini_history_to_claude_keeps_pairs_and_ids_valid():
    gemini = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in two cities"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "CiQBVKhc7l5mzk",
                    },
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 25}}},
                ],
            },
        ]
    }
    out = translate_request(Format.GEMINI, Format.CLAUDE, gemini, model="c", stream=False)
    calls = out["messages"][1]["content"]
    results = out["messages"][2]["content"]
    assert [c["input"]["city"] for c in calls] == ["Paris", "Rome"]
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in calls]
    assert [r["content"] for r in results] == ['{"temp":20}', '{"temp":25}']
    assert calls[0]["id"] != calls[1]["id"]


def test_orphan_tool_results_become_text_for_every_target():
    # a client that trimmed its history: the call is gone, its result is still there
    chat = {
        "messages": [
            {"role": "tool", "tool_call_id": "gone", "content": "42"},
            {"role": "user", "content": "continue"},
        ]
    }
    note = "Result of tool call gone: 42"
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, chat, model="c", stream=False)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": note},
                {"type": "text", "text": "continue"},
            ],
        }
    ]
    out = translate_request(Format.OPENAI_CHAT, Format.GEMINI, chat, model="g", stream=False)
    assert out["contents"] == [{"role": "user", "parts": [{"text": note}, {"text": "continue"}]}]
    claude = {
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "gone", "content": "42"}],
            }
        ],
    }
    out = translate_request(Format.CLAUDE, Format.OPENAI_RESPONSES, claude, model="o", stream=False)
    assert out["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": note}]}
    ]
    out = translate_request(Format.CLAUDE, Format.OPENAI_CHAT, claude, model="o", stream=False)
    assert out["messages"] == [{"role": "user", "content": note}]


def test_forced_tool_choice_drops_thinking_and_parallel_flag_lands_on_the_choice():
    chat = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "reasoning_effort": "high",
    }
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, chat, model="c", stream=False)
    assert out["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    assert "thinking" not in out and "output_config" not in out


def test_only_instructions_become_the_user_turn():
    chat = {"messages": [{"role": "system", "content": "Tell me a joke."}]}
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, chat, model="c", stream=False)
    assert "system" not in out
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Tell me a joke."}]}
    ]


def test_claude_passthrough_only_sets_model():
    body = claude_code_body()
    out = translate_request(
        Format.CLAUDE, Format.CLAUDE, body, model="claude-opus-4-6", stream=True
    )
    assert out == {**body, "model": "claude-opus-4-6"}


@pytest.mark.parametrize(
    "body",
    [{"messages": {}}, {"messages": [None]}, {"messages": [{"role": "user", "content": 1.5}]}],
)
def test_bad_claude_bodies(body):
    with pytest.raises(TranslationError):
        translate_request(Format.CLAUDE, Format.OPENAI_CHAT, body, model="o", stream=False)


@pytest.mark.parametrize("signature", [None, ""])
def test_unsigned_thinking_goes_to_chat_as_reasoning_content(signature):
    thinking = {"type": "thinking", "thinking": "prior reasoning"}
    if signature is not None:
        thinking["signature"] = signature
    body = {
        "stop_sequences": ["</block>"],
        "messages": [
            {"role": "user", "content": "read it"},
            {
                "role": "assistant",
                "content": [
                    thinking,
                    {"type": "tool_use", "id": "c1", "name": "Read", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}],
            },
        ],
    }
    out = translate_request(Format.CLAUDE, Format.OPENAI_CHAT, body, model="ds", stream=False)
    assert out["messages"][1]["reasoning_content"] == "prior reasoning"
    assert out["stop"] == ["</block>"]  # a list, even of one
