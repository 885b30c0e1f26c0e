"""count_tokens bodies and the local token estimate."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import TranslationError, count_tokens_request, estimate_tokens

CLAUDE_COUNT = {
    "model": "claude-sonnet-4-5",
    "system": "Be brief.",
    "messages": [
        {"role": "user", "content": "What is 2+2?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "calc", "input": {"e": "2+2"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4"}]},
    ],
    "tools": [
        {
            "name": "calc",
            "input_schema": {"type": "object", "properties": {"e": {"type": "string"}}},
        }
    ],
}


def test_claude_count_to_gemini_counts_system_in_contents():
    out = count_tokens_request(Format.CLAUDE, Format.GEMINI, CLAUDE_COUNT, model="gemini-2.5-pro")
    assert list(out) == ["contents"]
    first = out["contents"][0]
    assert first["role"] == "user"
    assert first["parts"][:2] == [{"text": "Be brief."}, {"text": "What is 2+2?"}]
    assert out["contents"][2]["parts"][0]["functionResponse"]["name"] == "calc"


def test_gemini_count_to_claude_and_claude_passthrough():
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    out = count_tokens_request(Format.GEMINI, Format.CLAUDE, gemini, model="claude-sonnet-4-5")
    assert out == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
    }
    out = count_tokens_request(
        Format.CLAUDE, Format.CLAUDE, {**CLAUDE_COUNT, "max_tokens": 5}, model="x"
    )
    assert set(out) == {"model", "system", "messages", "tools"} and out["model"] == "x"
    wrapped = {"generateContentRequest": {"model": "models/g", "contents": gemini["contents"]}}
    assert count_tokens_request(Format.GEMINI, Format.GEMINI, wrapped, model="g") == gemini


def test_openai_targets_get_the_translated_request_to_estimate():
    out = count_tokens_request(Format.CLAUDE, Format.OPENAI_RESPONSES, CLAUDE_COUNT, model="gpt-5")
    assert out["model"] == "gpt-5" and out["input"][0]["role"] == "developer"
    assert estimate_tokens(Format.OPENAI_RESPONSES, out) > 0


def test_estimate_is_deterministic_and_grows_with_content():
    small = {"messages": [{"role": "user", "content": "hi"}]}
    big = {"messages": [{"role": "user", "content": "hi " * 400}]}
    assert estimate_tokens(Format.OPENAI_CHAT, small) == estimate_tokens(Format.OPENAI_CHAT, small)
    # 2 chars -> 1 token, +4 per message, +3 reply priming
    assert estimate_tokens(Format.OPENAI_CHAT, small) == 8
    assert estimate_tokens(Format.OPENAI_CHAT, big) == 3 + 4 + 300
    cjk = {"messages": [{"role": "user", "content": "你好世界"}]}
    assert estimate_tokens(Format.OPENAI_CHAT, cjk) == 3 + 4 + 4
    with_image = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
            }
        ]
    }
    assert estimate_tokens(Format.OPENAI_CHAT, with_image) == 3 + 4 + 765


def test_estimate_counts_tools_calls_and_system_in_every_format():
    claude = estimate_tokens(Format.CLAUDE, CLAUDE_COUNT)
    assert claude > estimate_tokens(Format.CLAUDE, {"messages": CLAUDE_COUNT["messages"]})
    assert (
        estimate_tokens(
            Format.GEMINI, {"contents": [{"role": "user", "parts": [{"text": "abcd"}]}]}
        )
        == 8
    )
    assert (
        estimate_tokens(Format.OPENAI_RESPONSES, {"input": "abcd", "instructions": "abcd"})
        == 3 + 5 + 5
    )


def test_bad_count_bodies():
    with pytest.raises(TranslationError):
        count_tokens_request(Format.CLAUDE, Format.GEMINI, {"messages": 1}, model="g")
    with pytest.raises(TranslationError):
        estimate_tokens(Format.GEMINI, {"contents": "x"})
    with pytest.raises(TranslationError):
        count_tokens_request(Format.CLAUDE, Format.CLAUDE, [], model="g")
