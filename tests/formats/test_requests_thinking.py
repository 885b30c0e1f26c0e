"""Thinking suffixes, level/budget scales, and apply_thinking clamped to model capabilities."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.requests import apply_thinking, parse_thinking_suffix, translate_request
from cliproxy.formats.requests.thinking import budget_to_level, config_from_suffix, level_to_budget

# catalog entries (cliproxy/data/models.yaml `thinking:`)
CLAUDE_BUDGET = {"min": 1024, "max": 128000, "zero_allowed": True}
CLAUDE_ADAPTIVE = {
    "min": 1024,
    "max": 128000,
    "zero_allowed": True,
    "levels": ["low", "medium", "high", "max"],
}
GEMINI_PRO = {"min": 128, "max": 32768, "dynamic_allowed": True}
GEMINI_FLASH = {"min": 0, "max": 24576, "zero_allowed": True, "dynamic_allowed": True}
GEMINI_3 = {"min": 128, "max": 32768, "dynamic_allowed": True, "levels": ["low", "high"]}
CODEX = {"levels": ["low", "medium", "high", "xhigh"]}


@pytest.mark.parametrize(
    "model, expected",
    [
        ("gpt-5(high)", ("gpt-5", "high")),
        ("gemini-2.5-pro(8192)", ("gemini-2.5-pro", "8192")),
        ("claude(none)", ("claude", "none")),
        ("a(b)(c)", ("a(b)", "c")),
        ("plain", ("plain", None)),
        ("odd(", ("odd(", None)),
        ("(high)", ("(high)", None)),
        ("x(whatever)", ("x", "whatever")),
    ],
)
def test_parse_thinking_suffix(model, expected):
    assert parse_thinking_suffix(model) == expected


def test_suffix_values_and_scales():
    assert config_from_suffix("HIGH").level == "high"
    assert config_from_suffix("0").mode == "none"
    assert config_from_suffix("-1").mode == "auto"
    assert config_from_suffix("00512").budget == 512
    assert config_from_suffix("whatever") is None
    assert level_to_budget("medium") == 8192
    assert [budget_to_level(b) for b in (-1, 0, 1, 512, 513, 8192, 8193, 24577)] == [
        "auto",
        "none",
        "minimal",
        "minimal",
        "low",
        "medium",
        "high",
        "xhigh",
    ]


def claude_body(**extra):
    return {
        "model": "c",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_claude_level_suffix_on_a_budget_model_becomes_a_budget():
    out = apply_thinking(
        Format.CLAUDE, claude_body(temperature=0.3), "high", model_caps=CLAUDE_BUDGET
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert out["temperature"] == 1


def test_claude_adaptive_model_clamps_levels():
    out = apply_thinking(Format.CLAUDE, claude_body(), "xhigh", model_caps=CLAUDE_ADAPTIVE)
    assert out["thinking"] == {"type": "adaptive"}
    # xhigh is not offered: max is the same "top effort" intent (as CLIProxyAPI maps it)
    assert out["output_config"] == {"effort": "max"}
    out = apply_thinking(Format.CLAUDE, claude_body(), "max", model_caps=CLAUDE_ADAPTIVE)
    assert out["output_config"] == {"effort": "max"}
    out = apply_thinking(Format.CLAUDE, claude_body(), "minimal", model_caps=CLAUDE_ADAPTIVE)
    assert out["output_config"] == {"effort": "low"}


def test_claude_budget_is_clamped_and_kept_under_max_tokens():
    out = apply_thinking(Format.CLAUDE, claude_body(), "500000", model_caps=CLAUDE_BUDGET)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 63999}
    out = apply_thinking(
        Format.CLAUDE, claude_body(max_tokens=20000), "16", model_caps=CLAUDE_BUDGET
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    # no room for the minimum budget under the client's own limit: thinking stays off
    out = apply_thinking(
        Format.CLAUDE, claude_body(max_tokens=800), "high", model_caps=CLAUDE_BUDGET
    )
    assert out["thinking"] == {"type": "disabled"}


def test_none_disables_and_the_client_body_is_not_modified():
    body = claude_body(
        thinking={"type": "enabled", "budget_tokens": 4096}, output_config={"effort": "high"}
    )
    out = apply_thinking(Format.CLAUDE, body, "none", model_caps=CLAUDE_BUDGET)
    assert out["thinking"] == {"type": "disabled"}
    assert "output_config" not in out
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["output_config"] == {"effort": "high"}


def test_gemini_budgets_and_levels():
    body = {"contents": [], "generationConfig": {"temperature": 1}}
    out = apply_thinking(Format.GEMINI, body, "high", model_caps=GEMINI_PRO)
    assert out["generationConfig"] == {
        "temperature": 1,
        "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True},
    }
    out = apply_thinking(Format.GEMINI, body, "100000", model_caps=GEMINI_PRO)
    assert out["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 32768
    # pro cannot switch thinking off: none becomes its minimum
    out = apply_thinking(Format.GEMINI, body, "none", model_caps=GEMINI_PRO)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 128,
        "includeThoughts": False,
    }
    out = apply_thinking(Format.GEMINI, body, "none", model_caps=GEMINI_FLASH)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0,
        "includeThoughts": False,
    }
    out = apply_thinking(Format.GEMINI, body, "medium", model_caps=GEMINI_3)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "low",
        "includeThoughts": True,
    }
    out = apply_thinking(Format.GEMINI, body, "auto", model_caps=GEMINI_FLASH)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": -1,
        "includeThoughts": True,
    }
    assert body == {"contents": [], "generationConfig": {"temperature": 1}}


def test_gemini_keeps_the_clients_include_thoughts_choice():
    body = {
        "generationConfig": {"thinkingConfig": {"thinking_budget": 1000, "include_thoughts": False}}
    }
    out = apply_thinking(Format.GEMINI, body, "4096", model_caps=GEMINI_PRO)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 4096,
        "includeThoughts": False,
    }


def test_openai_levels_clamp_to_the_model():
    out = apply_thinking(
        Format.OPENAI_RESPONSES, {"reasoning": {"summary": "auto"}}, "max", model_caps=CODEX
    )
    assert out["reasoning"] == {"summary": "auto", "effort": "xhigh"}
    out = apply_thinking(Format.OPENAI_CHAT, {}, "minimal", model_caps=CODEX)
    assert out["reasoning_effort"] == "low"
    out = apply_thinking(Format.OPENAI_CHAT, {}, "30000", model_caps=CODEX)
    assert out["reasoning_effort"] == "xhigh"
    out = apply_thinking(Format.OPENAI_CHAT, {}, "none", model_caps=CODEX)
    assert out["reasoning_effort"] == "low"  # no "none" level: the first level


def test_body_config_is_fitted_without_a_suffix():
    out = apply_thinking(
        Format.OPENAI_CHAT, {"reasoning_effort": "minimal"}, None, model_caps=CODEX
    )
    assert out["reasoning_effort"] == "low"
    body = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 99999}}}
    out = apply_thinking(Format.GEMINI, body, None, model_caps=GEMINI_FLASH)
    assert out["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 24576


def test_unknown_model_takes_the_config_as_given_and_known_non_thinking_model_loses_it():
    out = apply_thinking(Format.OPENAI_CHAT, {"reasoning_effort": "minimal"}, None, model_caps=None)
    assert out["reasoning_effort"] == "minimal"
    out = apply_thinking(Format.OPENAI_CHAT, {}, "8192", model_caps=None)
    assert out["reasoning_effort"] == "medium"
    out = apply_thinking(
        Format.CLAUDE,
        claude_body(thinking={"type": "enabled", "budget_tokens": 2000}),
        "high",
        model_caps={},
    )
    assert "thinking" not in out
    out = apply_thinking(
        Format.GEMINI,
        {"generationConfig": {"thinkingConfig": {"thinkingBudget": 5}, "topK": 3}},
        None,
        model_caps={},
    )
    assert out["generationConfig"] == {"topK": 3}


def test_meaningless_suffix_changes_nothing():
    body = {"reasoning_effort": "high"}
    assert apply_thinking(Format.OPENAI_CHAT, body, "fast", model_caps=None) == body


def test_suffix_after_translation_wins_over_the_translated_setting():
    chat = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}
    base, suffix = parse_thinking_suffix("gemini-2.5-flash(0)")
    body = translate_request(
        Format.OPENAI_CHAT, Format.GEMINI, chat, model=base, stream=False, model_caps=GEMINI_FLASH
    )
    assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1024
    out = apply_thinking(Format.GEMINI, body, suffix, model_caps=GEMINI_FLASH)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0,
        "includeThoughts": False,
    }


def test_known_model_without_thinking_gets_no_thinking_fields_from_translation():
    chat = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}
    for dst in (Format.CLAUDE, Format.GEMINI, Format.OPENAI_RESPONSES):
        out = translate_request(
            Format.OPENAI_CHAT, dst, chat, model="m", stream=False, model_caps={}
        )
        assert "thinking" not in out and "reasoning" not in out
        assert "thinkingConfig" not in out.get("generationConfig", {})


def test_claude_default_max_tokens_respects_the_model_output_limit():
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    caps = {"output": 8192}
    out = translate_request(
        Format.OPENAI_CHAT, Format.CLAUDE, chat, model="m", stream=False, model_caps=caps
    )
    assert out["max_tokens"] == 8192
    out = translate_request(Format.OPENAI_CHAT, Format.CLAUDE, chat, model="m", stream=False)
    assert out["max_tokens"] == 32000


# -- OpenAI-compatible models with configured levels (openai-compatibility `thinking.levels`)

COMPAT_HIGH_MAX = {"levels": ["high", "max"]}


@pytest.mark.parametrize(
    "asked, levels, want",
    [
        ("xhigh", ["high", "max", "xhigh"], "xhigh"),
        ("xhigh", ["high", "max"], "max"),
        ("xhigh", ["high"], "high"),
        ("max", ["high", "xhigh", "max"], "max"),
        ("max", ["high", "xhigh"], "xhigh"),
        ("max", ["high"], "high"),
    ],
)
def test_top_effort_takes_its_twin_before_a_lower_level(asked, levels, want):
    body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": asked}
    out = translate_request(
        Format.OPENAI_CHAT,
        Format.OPENAI_CHAT,
        body,
        model="m",
        stream=False,
        model_caps={"levels": levels},
    )
    out = apply_thinking(Format.OPENAI_CHAT, out, None, model_caps={"levels": levels})
    assert out["reasoning_effort"] == want


def test_max_stays_max_for_a_model_offering_it_and_is_xhigh_otherwise():
    out = apply_thinking(Format.OPENAI_CHAT, {}, "max", model_caps=COMPAT_HIGH_MAX)
    assert out["reasoning_effort"] == "max"
    out = apply_thinking(Format.OPENAI_CHAT, {}, "max", model_caps=None)
    assert out["reasoning_effort"] == "xhigh"
    out = apply_thinking(Format.OPENAI_RESPONSES, {}, "max", model_caps=COMPAT_HIGH_MAX)
    assert out["reasoning"]["effort"] == "max"


@pytest.mark.parametrize("caps", [None, COMPAT_HIGH_MAX], ids=["unknown", "configured"])
def test_a_summary_alone_sets_no_chat_effort(caps):
    body = {"model": "m", "reasoning": {"summary": "auto"}, "input": "hi"}
    out = translate_request(
        Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, body, model="m", stream=False, model_caps=caps
    )
    out = apply_thinking(Format.OPENAI_CHAT, out, None, model_caps=caps)
    assert "reasoning_effort" not in out
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    # with an effort it is carried as before
    body["reasoning"] = {"summary": "auto", "effort": "high"}
    out = translate_request(
        Format.OPENAI_RESPONSES, Format.OPENAI_CHAT, body, model="m", stream=False, model_caps=caps
    )
    assert out["reasoning_effort"] == "high"
