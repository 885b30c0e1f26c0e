"""Messages body rules (breakpoints, TTL order, thinking vs sampling) and output limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cliproxy.formats import Format
from cliproxy.formats.requests.claude_rules import (
    count_breakpoints,
    fit_thinking_and_sampling,
    limit_breakpoints,
    order_cache_ttls,
)
from cliproxy.formats.requests.limits import clamp_output_tokens
from cliproxy.formats.requests.translate import translate_request

CC = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def test_breakpoints_over_four_drop_non_last_system_and_tools_first():
    body = {
        "tools": [{"name": "t1", "cache_control": CC}, {"name": "t2", "cache_control": CC}],
        "system": [{"type": "text", "text": "s", "cache_control": CC}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "u", "cache_control": CC}]},
            {"role": "user", "content": [{"type": "text", "text": "v", "cache_control": CC}]},
        ],
    }
    out = limit_breakpoints(body)
    assert count_breakpoints(out) == 4
    assert "cache_control" not in out["tools"][0] and "cache_control" in out["tools"][1]
    assert count_breakpoints(body) == 5  # the input is not modified


@given(st.lists(st.booleans(), max_size=12), st.integers(min_value=0, max_value=6))
def test_breakpoints_never_exceed_the_limit(marks, limit):
    tools = [{"name": f"t{i}", **({"cache_control": CC} if m else {})} for i, m in enumerate(marks)]
    out = limit_breakpoints({"tools": tools, "messages": []}, limit)
    assert count_breakpoints(out) == min(limit, sum(marks))


def test_one_hour_ttl_after_a_five_minute_breakpoint_is_dropped():
    body = {
        "tools": [{"name": "t", "cache_control": HOUR}],
        "system": [{"type": "text", "text": "s", "cache_control": CC}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "u", "cache_control": HOUR}]}
        ],
    }
    out = order_cache_ttls(body)
    assert out["tools"][0]["cache_control"]["ttl"] == "1h"
    assert "ttl" not in out["messages"][0]["content"][0]["cache_control"]
    assert body["messages"][0]["content"][0]["cache_control"]["ttl"] == "1h"


def test_forced_tool_choice_turns_thinking_off_and_thinking_limits_sampling():
    forced = fit_thinking_and_sampling(
        {
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "max"},
            "tool_choice": {"type": "any"},
        }
    )
    assert "thinking" not in forced and "output_config" not in forced
    thinking = fit_thinking_and_sampling(
        {"thinking": {"type": "enabled"}, "temperature": 0.2, "top_p": 0.5, "top_k": 3}
    )
    assert not {"temperature", "top_p", "top_k"} & set(thinking)
    plain = fit_thinking_and_sampling({"temperature": 0.2, "top_p": 0.5, "top_k": 3})
    assert plain == {"temperature": 0.2, "top_k": 3}


def test_output_limits_are_clamped_in_every_format():
    assert clamp_output_tokens(Format.CLAUDE, {"max_tokens": 128000}, 64000)["max_tokens"] == 64000
    assert clamp_output_tokens(Format.CLAUDE, {}, None)["max_tokens"] == 1024
    chat = clamp_output_tokens(
        Format.OPENAI_CHAT, {"max_completion_tokens": 9, "max_tokens": 99}, 10
    )
    assert chat == {"max_completion_tokens": 9, "max_tokens": 10}
    gem = clamp_output_tokens(Format.GEMINI, {"generationConfig": {"maxOutputTokens": 99}}, 10)
    assert gem["generationConfig"]["maxOutputTokens"] == 10
    assert clamp_output_tokens(Format.OPENAI_RESPONSES, {"max_output_tokens": 5}, 10) == {
        "max_output_tokens": 5
    }


def test_amp_deep_mode_max_output_tokens_reaches_claude_within_the_model_limit():
    body = {"model": "m", "input": "hi", "max_output_tokens": 128000}
    caps = {"max_output": 64000}
    out = translate_request(
        Format.OPENAI_RESPONSES, Format.CLAUDE, body, model="m", stream=False, model_caps=caps
    )
    assert out["max_tokens"] == 64000
    same = translate_request(
        Format.CLAUDE,
        Format.CLAUDE,
        {"max_tokens": 128000, "messages": []},
        model="m",
        stream=False,
        model_caps=caps,
    )
    assert same["max_tokens"] == 64000
