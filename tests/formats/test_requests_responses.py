"""Responses requests (as Codex CLI and the OpenAI SDK send them) into the other formats."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import (
    TranslationError,
    codex_fixups,
    flat_tool_names,
    translate_request,
)

GPT_SIG = "gAAAAB" + "x" * 120
SHELL = {
    "type": "object",
    "properties": {"command": {"type": "array", "items": {"type": "string"}}},
    "required": ["command"],
    "additionalProperties": False,
}


def codex_body(**extra):
    body = {
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>ro</permissions>"}],
            },
            {
                "type": "message",
                "id": "msg_u1",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "list files"},
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/AA=="},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "I should run ls."}],
                "content": None,
                "encrypted_content": GPT_SIG,
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_ls",
                "name": "shell",
                "arguments": '{"command":["ls"]}',
            },
            {"type": "function_call_output", "call_id": "call_ls", "output": "a.txt\nb.txt"},
            {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "call_id": "call_patch",
                "name": "apply_patch",
                "input": "*** Begin Patch",
            },
            {"type": "custom_tool_call_output", "call_id": "call_patch", "output": "Done"},
            {
                "type": "function_call",
                "call_id": "call_agent",
                "namespace": "multi_agent",
                "name": "close_agent",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "call_agent", "output": "closed"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Run",
                "strict": False,
                "parameters": SHELL,
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Patch files",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            },
            {
                "type": "namespace",
                "name": "multi_agent",
                "tools": [
                    {
                        "type": "function",
                        "name": "close_agent",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
            },
            {"type": "web_search", "external_web_access": True},
            {"type": "image_generation"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
    }
    body.update(extra)
    return body


def test_codex_body_to_claude():
    out = translate_request(
        Format.OPENAI_RESPONSES, Format.CLAUDE, codex_body(), model="c", stream=True
    )
    assert out["system"] == [
        {"type": "text", "text": "You are Codex."},
        {"type": "text", "text": "<permissions>ro</permissions>"},
    ]
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert out["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AA=="},
    }
    # GPT reasoning cannot be replayed to Claude: only the call survives in that turn
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_ls", "name": "shell", "input": {"command": ["ls"]}}
    ]
    assert out["messages"][3]["content"][0]["input"] == {"input": "*** Begin Patch"}
    assert out["messages"][5]["content"][0]["name"] == "multi_agent__close_agent"
    names = [t.get("name") for t in out["tools"]]
    assert names == ["shell", "apply_patch", "multi_agent__close_agent", "web_search"]
    assert out["tools"][1]["input_schema"]["required"] == ["input"]
    assert out["tools"][3]["type"] == "web_search_20250305"
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_codex_body_to_gemini_and_chat():
    gem = translate_request(
        Format.OPENAI_RESPONSES, Format.GEMINI, codex_body(), model="g", stream=True
    )
    assert gem["systemInstruction"]["parts"][0] == {"text": "You are Codex."}
    responses = [
        p["functionResponse"]
        for c in gem["contents"]
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert [r["name"] for r in responses] == ["shell", "apply_patch", "multi_agent__close_agent"]
    assert responses[0]["response"] == {"result": "a.txt\nb.txt"}
    assert {"googleSearch": {}} in gem["tools"]
    assert gem["generationConfig"]["thinkingConfig"]["includeThoughts"] is True

    chat = translate_request(
        Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, codex_body(), model="o", stream=False
    )
    assert [m["role"] for m in chat["messages"][:4]] == ["system", "system", "user", "assistant"]
    assistant = chat["messages"][3]
    # encrypted GPT reasoning travels as reasoning_content to an OpenAI-compatible upstream
    assert assistant["reasoning_content"] == "I should run ls."
    assert assistant["tool_calls"][0]["id"] == "call_ls"
    assert chat["messages"][4] == {
        "role": "tool",
        "tool_call_id": "call_ls",
        "content": "a.txt\nb.txt",
    }
    assert chat["reasoning_effort"] == "high"
    assert chat["parallel_tool_calls"] is False


def test_gpt_signed_thinking_in_claude_history_is_replayed_as_a_reasoning_item():
    claude = {
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "plan", "signature": GPT_SIG},
                    {"type": "thinking", "thinking": "claude's own", "signature": "E" + "a" * 60},
                    {"type": "text", "text": "yo"},
                ],
            },
        ],
    }
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, claude, model="gpt-5", stream=True
    )
    assert out["input"][1:] == [
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "plan"}],
            "encrypted_content": GPT_SIG,
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "yo"}],
        },
    ]


def test_codex_fixups_make_a_responses_body_acceptable_to_codex():
    body = translate_request(
        Format.OPENAI_CHAT,
        Format.OPENAI_RESPONSES,
        {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"},
        model="gpt-5",
        stream=False,
    )
    fixed = codex_fixups(
        {
            **body,
            "temperature": 0.3,
            "max_output_tokens": 5,
            "user": "u",
            "service_tier": "flex",
            "previous_response_id": "resp_1",
        }
    )
    assert fixed["stream"] is True and fixed["store"] is False
    assert fixed["instructions"] == ""
    assert fixed["include"] == ["reasoning.encrypted_content"]
    assert fixed["reasoning"] == {"summary": "auto", "effort": "low"}
    assert fixed["parallel_tool_calls"] is True
    for gone in (
        "temperature",
        "max_output_tokens",
        "user",
        "service_tier",
        "previous_response_id",
    ):
        assert gone not in fixed
    assert codex_fixups({"input": "x", "service_tier": "priority"})["service_tier"] == "priority"
    assert codex_fixups({"input": "x"})["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    ]
    sys_role = codex_fixups({"input": [{"role": "system", "content": "s"}]})["input"][0]
    assert sys_role["role"] == "developer"
    tools = codex_fixups({"input": [], "tools": [{"type": "web_search_preview"}]})["tools"]
    assert tools == [{"type": "web_search"}]


def test_codex_fixups_normalise_what_responses_clients_send():
    part = {"type": "input_text", "text": "a", "prompt_cache_breakpoint": {"mode": "explicit"}}
    fixed = codex_fixups(
        {
            "input": [{"type": "message", "role": "user", "content": [part]}],
            "include": ["file_search_call.results", "reasoning.encrypted_content"],
            "parallel_tool_calls": False,
            "prompt_cache_options": {"mode": "implicit"},
            "truncation": "auto",
            "context_management": {"compaction": {}},
            "tool_choice": {
                "type": "allowed_tools",
                "tools": [{"type": "web_search_preview"}, {"type": "function", "name": "f"}],
            },
        }
    )
    assert fixed["input"][0]["content"] == [{"type": "input_text", "text": "a"}]
    assert part["prompt_cache_breakpoint"] == {"mode": "explicit"}  # the input is not changed
    assert fixed["include"] == ["reasoning.encrypted_content"]
    assert fixed["parallel_tool_calls"] is False  # the client's own choice stands
    for gone in ("prompt_cache_options", "truncation", "context_management"):
        assert gone not in fixed
    assert fixed["tool_choice"]["tools"] == [
        {"type": "web_search"},
        {"type": "function", "name": "f"},
    ]
    choice = codex_fixups({"input": [], "tool_choice": {"type": "web_search_preview"}})
    assert choice["tool_choice"] == {"type": "web_search"}


@pytest.mark.parametrize(
    ("extra", "tier"),
    [
        ({"speed": "fast"}, "priority"),
        ({"service_tier": "fast"}, "priority"),
        ({"service_tier": "priority"}, "priority"),
        ({"service_tier": "auto", "speed": "fast"}, "priority"),
        ({"service_tier": "auto"}, None),
        ({"service_tier": "standard_only"}, None),
    ],
)
def test_claude_fast_mode_is_codex_priority(extra, tier):
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, body, model="gpt-5", stream=True
    )
    assert out.get("service_tier") == tier
    assert codex_fixups(out).get("service_tier") == tier


def test_claude_web_search_choice_stays_a_web_search_choice():
    body = {
        "messages": [{"role": "user", "content": "news?"}],
        "tools": [
            {"type": "web_search_20250305", "name": "search_the_web"},
            {"name": "f", "input_schema": {"type": "object"}},
        ],
        "tool_choice": {"type": "tool", "name": "search_the_web"},
    }
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, body, model="gpt-5", stream=True
    )
    assert out["tool_choice"] == {"type": "web_search"}
    body["tool_choice"] = {"type": "tool", "name": "f"}
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, body, model="gpt-5", stream=True
    )
    assert out["tool_choice"] == {"type": "function", "name": "f"}


def test_claude_mid_conversation_system_is_a_reminder_turn_for_codex():
    body = {
        "system": "rules",
        "messages": [
            {"role": "system", "content": "first"},
            {"role": "user", "content": "hello"},
            {"role": "system", "content": [{"type": "text", "text": "again"}]},
            {"role": "assistant", "content": "ok"},
        ],
    }
    out = codex_fixups(
        translate_request(Format.CLAUDE, Format.OPENAI_RESPONSES, body, model="gpt-5", stream=True)
    )
    roles = [(i["role"], i["content"][0]["text"]) for i in out["input"]]
    assert roles == [
        ("developer", "rules"),
        ("user", "<system-reminder>\nfirst\n</system-reminder>"),
        ("user", "hello"),
        ("user", "<system-reminder>\nagain\n</system-reminder>"),
        ("assistant", "ok"),
    ]


def test_long_names_and_call_ids_are_shortened_consistently():
    long_name = "mcp__some_server_with_a_really_long_name__" + "t" * 40
    long_id = "toolu_" + "z" * 80
    claude = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": long_id, "name": long_name, "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": long_id, "content": "ok"}],
            },
        ],
        "tools": [{"name": long_name, "input_schema": {"type": "object"}}],
    }
    out = translate_request(
        Format.CLAUDE, Format.OPENAI_RESPONSES, claude, model="gpt-5", stream=True
    )
    call, result = out["input"][1], out["input"][2]
    assert len(call["call_id"]) == 64 and call["call_id"] == result["call_id"]
    assert call["name"] == out["tools"][0]["name"] == "mcp__" + "t" * 40
    assert out["tools"][0]["parameters"] == {"type": "object", "properties": {}}


def test_flat_tool_names_remember_namespaces_and_freeform_tools():
    body = codex_body()
    body["input"].append(
        {
            "type": "additional_tools",
            "tools": [
                {
                    "type": "namespace",
                    "name": "functions",
                    "tools": [{"type": "custom", "name": "exec"}],
                }
            ],
        }
    )
    names = flat_tool_names(body)
    assert names["multi_agent__close_agent"] == {
        "name": "close_agent",
        "namespace": "multi_agent",
        "custom": False,
    }
    assert names["apply_patch"]["custom"] is True
    assert names["functions__exec"] == {"name": "exec", "namespace": "functions", "custom": True}
    out = translate_request(Format.OPENAI_RESPONSES, Format.CLAUDE, body, model="c", stream=True)
    assert "functions__exec" in [t.get("name") for t in out["tools"]]


def test_string_input_and_json_schema_text_format():
    body = {
        "model": "gpt-5",
        "input": "Say hi",
        "text": {"format": {"type": "json_schema", "name": "Hi", "schema": {"type": "object"}}},
        "max_output_tokens": 100,
        "temperature": 0.5,
    }
    out = translate_request(
        Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, body, model="o", stream=False
    )
    assert out["messages"] == [{"role": "user", "content": "Say hi"}]
    assert out["response_format"]["json_schema"]["name"] == "Hi"
    assert out["max_tokens"] == 100 and out["temperature"] == 0.5


def test_file_inputs_become_documents_where_possible():
    pdf = "JVBERi0xLjQK"
    body = {
        "input": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": f"data:application/pdf;base64,{pdf}",
                    },
                    {"type": "input_file", "file_url": "https://example.com/b.pdf"},
                    {"type": "input_file", "file_id": "file-123"},
                ],
            }
        ]
    }
    out = translate_request(Format.OPENAI_RESPONSES, Format.CLAUDE, body, model="c", stream=False)
    blocks = out["messages"][0]["content"]
    assert blocks[0] == {
        "type": "document",
        "title": "a.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    assert blocks[1] == {
        "type": "document",
        "source": {"type": "url", "url": "https://example.com/b.pdf"},
    }
    # an uploaded OpenAI file id means nothing to Anthropic: say it was there
    assert blocks[2]["type"] == "text" and "file-123" in blocks[2]["text"]


@pytest.mark.parametrize(
    "body", [{"input": 3}, {"input": [1]}, {"input": [{"role": "user", "content": 7}]}]
)
def test_bad_input_is_a_translation_error(body):
    with pytest.raises(TranslationError):
        translate_request(Format.OPENAI_RESPONSES, Format.CLAUDE, body, model="c", stream=False)


def test_chat_tool_result_files_reach_codex_by_id_url_and_name():
    body = {
        "messages": [
            {"role": "user", "content": "show"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "r", "arguments": "{}"}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "image_url", "image_url": {"file_id": "file-img"}},
                    {"type": "file", "file": {"file_id": "file-doc", "filename": "d.pdf"}},
                    {"type": "file", "file": {"file_url": "https://x.test/r.pdf"}},
                ],
            },
        ]
    }
    out = translate_request(
        Format.OPENAI_CHAT, Format.OPENAI_RESPONSES, body, model="gpt-5", stream=True
    )
    assert out["input"][2]["output"] == [
        {"type": "input_image", "file_id": "file-img", "detail": "auto"},
        {"type": "input_file", "file_id": "file-doc", "filename": "d.pdf"},
        {"type": "input_file", "file_url": "https://x.test/r.pdf"},
    ]
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}}
    pdf["source"]["data"] = "JVBERi0="
    claude = {"messages": [{"role": "user", "content": [pdf]}]}
    out = translate_request(Format.CLAUDE, Format.OPENAI_RESPONSES, claude, model="g", stream=True)
    assert out["input"][0]["content"][0]["filename"] == "document.pdf"
