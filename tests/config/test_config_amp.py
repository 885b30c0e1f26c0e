"""Amp settings: the flat keys of the Amp guide, the nested `ampcode:` block, and both."""

from __future__ import annotations

import pytest

from cliproxy.config import AmpUpstreamKey, ModelMapping
from tests.config.yamltext import error_of, parse


def test_defaults_without_any_amp_keys():
    amp = parse("port: 8317\n").ampcode
    assert amp.upstream_url == "" and amp.upstream_api_key == ""
    assert amp.restrict_management_to_localhost is True
    assert amp.model_mappings == () and amp.force_model_mappings is False
    assert amp.fallback == "upstream"


def test_flat_keys_from_the_amp_guide():
    config = parse(
        """\
        port: 8317
        auth-dir: "~/.cli-proxy-api"
        amp-upstream-url: "https://ampcode.com"
        amp-upstream-api-key: "amp-key"
        amp-restrict-management-to-localhost: false
        amp-model-mappings:
          - {from: claude-opus-4-5, to: claude-sonnet-4-5}
        amp-force-model-mappings: true
        debug: false
        logging-to-file: true
        """
    )
    amp = config.ampcode
    assert amp.upstream_url == "https://ampcode.com"
    assert amp.upstream_api_key == "amp-key"
    assert amp.restrict_management_to_localhost is False
    assert amp.model_mappings == (ModelMapping("claude-opus-4-5", "claude-sonnet-4-5"),)
    assert amp.force_model_mappings is True
    # logging-to-file is acted on (cliproxy.observe.logfiles): nothing to report
    assert config.warnings == ()


def test_nested_block():
    amp = parse(
        """\
        ampcode:
          upstream-url: https://amp.example.com/
          upstream-api-key: "  amp-key  "
          upstream-api-keys:
            - upstream-api-key: "  u1  "
              api-keys: ["  k1  ", "", k2, k1]
            - upstream-api-key: "   "
              api-keys: [k3]
          restrict-management-to-localhost: true
          model-mappings:
            - {from: "^gpt-5$", to: gemini-2.5-pro, regex: true}
            - {from: "", to: x}
          force-model-mappings: false
          fallback: deny
        """
    ).ampcode
    assert amp.upstream_url == "https://amp.example.com"
    assert amp.upstream_api_key == "amp-key"
    assert amp.upstream_api_keys == (AmpUpstreamKey("u1", ("k1", "k2")),)
    upstream, clients = amp.upstream_api_keys[0]  # also a plain pair
    assert (upstream, clients) == ("u1", ("k1", "k2"))
    assert amp.model_mappings == (ModelMapping("^gpt-5$", "gemini-2.5-pro", True),)
    assert amp.fallback == "deny"


def test_nested_wins_over_flat_with_a_warning():
    config = parse(
        """\
        amp-upstream-url: https://flat.example.com
        amp-restrict-management-to-localhost: false
        ampcode:
          upstream-url: https://nested.example.com
        """
    )
    assert config.ampcode.upstream_url == "https://nested.example.com"
    # Only the setting given twice is taken from the nested block.
    assert config.ampcode.restrict_management_to_localhost is False
    assert config.warnings == (
        "config.yaml: amp-upstream-url: ampcode.upstream-url (line 4) is also set and wins; "
        "this is ignored (line 1)",
    )


@pytest.mark.parametrize("url", ["://invalid-url", "ampcode.com", "ftp://ampcode.com"])
def test_upstream_url_must_be_http(url):
    err = error_of(f"ampcode:\n  upstream-url: {url!r}\n")
    assert (err.path, err.line) == ("ampcode.upstream-url", 2)
    err = error_of(f"amp-upstream-url: {url!r}\n")
    assert err.path == "amp-upstream-url"


def test_bad_regex_mapping_is_an_error_with_its_line():
    err = error_of(
        """\
        ampcode:
          model-mappings:
            - {from: fine, to: x}
            - from: "("
              to: y
              regex: true
        """
    )
    assert (err.path, err.line) == ("ampcode.model-mappings[1].from", 4)
    assert "regular expression" in err.message


def test_a_non_regex_mapping_may_contain_regex_characters():
    amp = parse("ampcode:\n  model-mappings: [{from: '(', to: y}]\n").ampcode
    assert amp.model_mappings == (ModelMapping("(", "y"),)


def test_fallback_must_be_upstream_or_deny():
    assert error_of("ampcode: {fallback: maybe}\n").path == "ampcode.fallback"


def test_flat_amp_fallback_key():
    assert parse("amp-fallback: deny\n").ampcode.fallback == "deny"
    assert error_of("amp-fallback: sometimes\n").path == "amp-fallback"
    config = parse("amp-fallback: deny\nampcode: {fallback: upstream}\n")
    assert config.ampcode.fallback == "upstream"
    assert "amp-fallback" in config.warnings[0]


def test_unknown_nested_key_warns():
    config = parse("ampcode:\n  upstream-urll: x\n")
    assert config.warnings == ("config.yaml: ampcode.upstream-urll: unknown key, ignored (line 2)",)
