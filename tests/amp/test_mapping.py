"""MAP-*: model mappings (amp.md §2.6)."""

from __future__ import annotations

from twisted.logger import capturedLogs

from cliproxy.amp.mapping import ModelMapper
from cliproxy.config import ModelMapping
from tests.amp.kit import messages

LOCAL = {"gemini-2.5-pro", "claude-sonnet-4-5", "gpt-5.2", "test/gpt-5.2", "gpt-4o", "local-b"}


def mapper(*mappings, local=LOCAL) -> ModelMapper:
    return ModelMapper(mappings, has_provider=lambda m: m in local)


def test_MAP_01_counts_mappings():
    m = mapper(ModelMapping("a", "b"), ModelMapping("c", "d"), ModelMapping("e", "f"))
    assert len(m) == 3 and len(m.mappings()) == 3
    assert len(ModelMapper(None)) == 0


def test_MAP_02_applies_only_when_target_has_a_local_provider():
    m = mapper(ModelMapping("claude-opus-4.5", "claude-sonnet-4-5"), ModelMapping("x", "nowhere"))
    assert m.map("claude-opus-4.5") == "claude-sonnet-4-5"
    assert m.map("x") == ""


def test_MAP_03_case_insensitive_unknown_and_empty():
    m = mapper(ModelMapping("claude-opus-4.5", "claude-sonnet-4-5"))
    assert m.map("Claude-Opus-4.5") == "claude-sonnet-4-5"
    assert m.map("unknown") == "" and m.map("") == ""


def test_MAP_04_update_replaces_and_skips_blank_entries():
    m = mapper(ModelMapping("a", "gpt-4o"), ModelMapping("b", "gpt-4o"))
    assert len(m) == 2
    m.update([ModelMapping("c", "gpt-4o"), ModelMapping("   ", "x"), ModelMapping("d", "")])
    assert m.mappings() == {"c": "gpt-4o"}
    assert m.map("a") == ""


def test_MAP_05_mappings_returns_a_copy():
    m = mapper(ModelMapping("a", "gpt-4o"))
    copy = m.mappings()
    copy["a"] = "changed"
    copy["z"] = "new"
    assert m.mappings() == {"a": "gpt-4o"}
    assert m.map("a") == "gpt-4o"


def test_MAP_06_regex_case_insensitive_on_base_name_exact_wins_invalid_skipped():
    with capturedLogs() as events:
        m = mapper(
            ModelMapping("^gpt-5$", "gemini-2.5-pro", regex=True),
            ModelMapping("(", "x", regex=True),
            ModelMapping("gpt-5", "claude-sonnet-4-5"),
            ModelMapping("^CLAUDE-", "local-b", regex=True),
        )
    assert any("invalid regex" in line for line in messages(events))
    assert m.map("gpt-5") == "claude-sonnet-4-5"  # exact beats regex
    m.update([ModelMapping("^gpt-5$", "gemini-2.5-pro", regex=True)])
    assert m.map("gpt-5(high)") == "gemini-2.5-pro(high)"
    assert m.map("GPT-5") == "gemini-2.5-pro"
    assert m.map("gpt-5-mini") == ""


def test_MAP_07_thinking_suffix_rules():
    m = mapper(
        ModelMapping("g25p", "gemini-2.5-pro"),
        ModelMapping("alias", "gemini-2.5-pro(medium)"),
        ModelMapping("g52", "gpt-5.2(xhigh)"),
    )
    assert m.map("g25p(8192)") == "gemini-2.5-pro(8192)"
    for level in ("high", "auto", "none"):
        assert m.map(f"g25p({level})") == f"gemini-2.5-pro({level})"
    assert m.map("g25p") == "gemini-2.5-pro"
    assert m.map("alias(high)") == "gemini-2.5-pro(medium)"
    assert m.map("g25p()") == "gemini-2.5-pro"
    assert m.map("g25p(high") == ""  # unclosed: a plain (unmapped) name
    assert m.map("g52") == "gpt-5.2(xhigh)"  # base gpt-5.2 is local


def test_MAP_08_regexes_in_config_order_first_match_wins():
    m = mapper(
        ModelMapping("^claude-", "local-b", regex=True),
        ModelMapping("opus", "gpt-4o", regex=True),
    )
    assert m.map("claude-opus-4") == "local-b"
    assert m.map("big-opus") == "gpt-4o"
