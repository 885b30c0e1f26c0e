"""Provider lists: defaults, dropped entries, normalisation, legacy forms."""

from __future__ import annotations

import pytest

from cliproxy.config import ModelEntry, OAuthModelAlias
from tests.config.yamltext import error_of, parse


def test_default_base_urls():
    config = parse(
        """\
        gemini-api-key: [{api-key: g}]
        claude-api-key: [{api-key: c}]
        vertex-api-key: [{api-key: v}]
        """
    )
    assert config.gemini_api_key[0].base_url == "https://generativelanguage.googleapis.com"
    assert config.claude_api_key[0].base_url == "https://api.anthropic.com"
    assert config.vertex_api_key[0].base_url == "https://aiplatform.googleapis.com"


def test_codex_entry_without_base_url_is_dropped_with_a_warning():
    config = parse(
        """\
        codex-api-key:
          - api-key: sk-no-base
          - api-key: sk-with-base
            base-url: https://codex.example.com
        """
    )
    assert [e.api_key for e in config.codex_api_key] == ["sk-with-base"]
    assert config.warnings == (
        "config.yaml: codex-api-key[0]: entry without base-url dropped "
        "(codex-api-key needs one) (line 2)",
    )


def test_empty_api_key_entries_are_dropped_with_a_warning():
    config = parse(
        """\
        claude-api-key:
          - api-key: "  "
          - base-url: https://x.example
          - api-key: real
        """
    )
    assert [e.api_key for e in config.claude_api_key] == ["real"]
    assert len(config.warnings) == 2
    assert all("without api-key dropped" in w for w in config.warnings)


def test_dropped_entries_are_still_validated():
    err = error_of("claude-api-key:\n  - base-url: nope\n")
    assert err.path == "claude-api-key[0].base-url"


def test_duplicate_key_and_base_are_dropped():
    config = parse(
        """\
        gemini-api-key:
          - api-key: same
          - api-key: same
            base-url: https://generativelanguage.googleapis.com/
          - api-key: same
            base-url: https://other.example.com
        """
    )
    assert [e.base_url for e in config.gemini_api_key] == [
        "https://generativelanguage.googleapis.com",
        "https://other.example.com",
    ]
    assert "same api-key and base-url as gemini-api-key[0]" in config.warnings[0]


def test_headers_drop_empty_names_and_values():
    config = parse(
        """\
        claude-api-key:
          - api-key: k
            headers:
              X-Keep: "v"
              X-Empty: ""
              X-Null:
              "": orphan
              X-Number: 42
        """
    )
    assert config.claude_api_key[0].headers == (("X-Keep", "v"), ("X-Number", "42"))


@pytest.mark.parametrize(
    "headers,name",
    [("{'Bad Name': v}", "Bad Name"), ("{'X-A:': v}", "X-A:"), ('{X-A: "a\\nb"}', "X-A")],
)
def test_headers_must_be_sendable(headers, name):
    err = error_of(f"claude-api-key:\n  - api-key: k\n    headers: {headers}\n")
    assert err.path == f"claude-api-key[0].headers.{name}"


def test_header_values_must_be_scalars():
    err = error_of("claude-api-key:\n  - api-key: k\n    headers:\n      X-A: [1, 2]\n")
    assert err.path == "claude-api-key[0].headers.X-A" and err.line == 4


def test_excluded_models_are_lowercased_and_deduplicated():
    config = parse("claude-api-key:\n  - api-key: k\n    excluded-models: [A-*, a-*, ' B ', '']\n")
    assert config.claude_api_key[0].excluded_models == ("a-*", "b")


def test_models_alias_defaults_to_name():
    config = parse(
        "gemini-api-key:\n  - api-key: k\n    models: [{name: m1}, {name: m2, alias: two}]\n"
    )
    assert config.gemini_api_key[0].models == (ModelEntry("m1", "m1"), ModelEntry("m2", "two"))


def test_vertex_models_need_name_and_alias():
    err = error_of("vertex-api-key:\n  - api-key: k\n    models:\n      - name: gemini-2.5-pro\n")
    assert (err.path, err.line) == ("vertex-api-key[0].models[0].alias", 4)


def test_prefix_is_trimmed_and_single_segment():
    config = parse("claude-api-key:\n  - {api-key: k, prefix: /team/}\n")
    assert config.claude_api_key[0].prefix == "team"
    assert error_of("claude-api-key:\n  - {api-key: k, prefix: a/b}\n").path == (
        "claude-api-key[0].prefix"
    )


def test_entry_disable_cooling_overrides_global():
    config = parse(
        """\
        disable-cooling: true
        claude-api-key:
          - api-key: inherit
          - api-key: own
            disable-cooling: false
        openai-compatibility:
          - {name: c, base-url: 'http://127.0.0.1:9'}
        """
    )
    assert [e.disable_cooling for e in config.claude_api_key] == [True, False]
    assert config.openai_compatibility[0].disable_cooling is True


def test_newer_upstream_entry_keys_are_kept_as_options():
    config = parse(
        """\
        claude-api-key:
          - api-key: k
            weight: 5
            request-retry: 2
            cloak: {mode: always}
            models:
              - {name: m, alias: a, display-name: Nice, force-mapping: true}
        """
    )
    entry = config.claude_api_key[0]
    assert entry.option("weight") == 5 and entry.option("cloak") == {"mode": "always"}
    # cloak and request-retry work; the rest is reported once each
    assert config.warnings == (
        "config.yaml: accepted but not supported: claude-api-key[0].models[0].display-name"
        " (line 7)",
        "config.yaml: accepted but not supported: claude-api-key[0].models[0].force-mapping"
        " (line 7)",
        "config.yaml: accepted but not supported: claude-api-key[0].weight (line 3)",
    )


def test_unknown_entry_key_warns():
    config = parse("claude-api-key:\n  - api-key: k\n    colour: red\n")
    assert config.warnings == (
        "config.yaml: claude-api-key[0].colour: unknown key, ignored (line 3)",
    )


def test_legacy_generative_language_api_key_becomes_gemini_entries():
    config = parse(
        """\
        gemini-api-key: [{api-key: new}]
        generative-language-api-key: [old-1, old-2, new]
        """
    )
    assert [e.api_key for e in config.gemini_api_key] == ["new", "old-1", "old-2"]
    assert all(
        e.base_url == "https://generativelanguage.googleapis.com" for e in config.gemini_api_key
    )


# -- openai-compatibility ------------------------------------------------------------------


def test_openai_compat_requires_name_and_base_url():
    assert error_of("openai-compatibility:\n  - base-url: https://x\n").path == (
        "openai-compatibility[0].name"
    )
    err = error_of("openai-compatibility:\n  - name: x\n")
    assert (err.path, err.line) == ("openai-compatibility[0].base-url", 2)


def test_openai_compat_entry():
    config = parse(
        """\
        openai-compatibility:
          - name: OpenRouter
            base-url: https://openrouter.ai/api/v1
            disabled: true
            priority: -1
            api-key-entries:
              - {api-key: k1, proxy-url: direct}
              - {api-key: ""}
              - {api-key: k1}
            api-keys: [legacy-k]
            models:
              - {name: x/y, alias: y, image: true, thinking: {levels: [LOW, high, low]}}
        """
    )
    entry = config.openai_compatibility[0]
    assert entry.provider == "openrouter" and entry.name == "OpenRouter"
    assert entry.disabled is True and entry.priority == -1
    assert [(k.api_key, k.proxy_url) for k in entry.api_key_entries] == [
        ("k1", "direct"),
        ("legacy-k", ""),
    ]
    assert entry.models == (ModelEntry("x/y", "y", True, ("low", "high")),)
    assert "api-key-entries[1]: entry without api-key dropped" in config.warnings[0]


# -- OAuth maps ----------------------------------------------------------------------------


def test_oauth_model_alias_drops_self_and_repeated_aliases():
    config = parse(
        """\
        oauth-model-alias:
          Claude:
            - {name: claude-sonnet-4-5, alias: sonnet}
            - {name: claude-opus-4-5, alias: SONNET}
            - {name: same, alias: Same}
            - {name: claude-haiku-4-5, alias: haiku, fork: true}
            - {name: only-name}
        """
    )
    assert config.oauth_model_alias["claude"] == (
        OAuthModelAlias("claude-sonnet-4-5", "sonnet"),
        OAuthModelAlias("claude-haiku-4-5", "haiku", True),
    )
    assert len(config.warnings) == 3


def test_oauth_excluded_models_lowercased():
    config = parse("oauth-excluded-models:\n  Codex: [GPT-5-*, gpt-5-*, '']\n")
    assert dict(config.oauth_excluded_models) == {"codex": ("gpt-5-*",)}


def test_oauth_maps_must_be_mappings():
    err = error_of("oauth-model-alias: [a]\n")
    assert err.path == "oauth-model-alias" and "mapping" in err.message
