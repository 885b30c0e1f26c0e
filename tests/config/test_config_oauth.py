"""`oauth-endpoints:`: real URLs by default, overrides validated like every other URL."""

from __future__ import annotations

from pathlib import Path

from cliproxy.config import OAuthEndpoints, load_config
from cliproxy.config._oauth import ENDPOINT_KEYS
from tests.config.yamltext import error_of, parse

CONF = Path(__file__).resolve().parents[2] / "conf" / "config.yaml"


def test_defaults_are_the_providers_real_urls():
    ep = parse("port: 8317\n").oauth_endpoints
    assert ep == OAuthEndpoints()
    assert ep.claude.token_url == "https://api.anthropic.com/v1/oauth/token"
    assert ep.claude.api_url == "https://api.anthropic.com"
    assert ep.codex.authorize_url == "https://auth.openai.com/oauth/authorize"
    assert ep.codex.api_url == "https://chatgpt.com/backend-api/codex"
    assert ep.gemini.token_url == "https://oauth2.googleapis.com/token"
    assert ep.gemini.code_assist_url == "https://cloudcode-pa.googleapis.com"


def test_overrides_replace_only_what_is_given_and_trim_the_slash():
    config = parse(
        """\
        oauth-endpoints:
          claude:
            token-url: "http://127.0.0.1:9999/v1/oauth/token/"
          gemini:
            code-assist-url: "http://127.0.0.1:9998"
            userinfo-url: "http://127.0.0.1:9997/oauth2/v1/userinfo"
        """
    )
    ep = config.oauth_endpoints
    assert ep.claude.token_url == "http://127.0.0.1:9999/v1/oauth/token"
    assert ep.claude.authorize_url == "https://claude.ai/oauth/authorize"
    assert ep.gemini.code_assist_url == "http://127.0.0.1:9998"
    assert ep.gemini.userinfo_url == "http://127.0.0.1:9997/oauth2/v1/userinfo"
    assert ep.codex == OAuthEndpoints().codex
    assert config.warnings == ()


def test_a_bad_url_names_its_key_and_line():
    err = error_of(
        """\
        oauth-endpoints:
          codex:
            token-url: "auth.example.com/token"
        """
    )
    assert str(err) == (
        "config.yaml: oauth-endpoints.codex.token-url: not a URL: 'auth.example.com/token' (line 3)"
    )


def test_a_non_http_scheme_is_refused():
    err = error_of("oauth-endpoints:\n  claude:\n    api-url: ftp://x.example\n")
    assert "oauth-endpoints.claude.api-url" in str(err) and "scheme" in str(err)


def test_unknown_keys_and_providers_warn():
    config = parse(
        """\
        oauth-endpoints:
          claude:
            token-ur: "https://x.example/token"
          kiro:
            token-url: "https://x.example/token"
        """
    )
    first, second = config.warnings
    assert first == "config.yaml: oauth-endpoints.claude.token-ur: unknown key, ignored (line 3)"
    assert second.startswith("config.yaml: oauth-endpoints.kiro: unknown key, ignored")


def test_a_provider_that_is_not_a_mapping_is_an_error():
    err = error_of("oauth-endpoints:\n  claude: https://x.example\n")
    assert "oauth-endpoints.claude" in str(err) and "mapping" in str(err)


def test_shipped_config_documents_every_endpoint_key():
    text = CONF.read_text()
    assert load_config(str(CONF)).oauth_endpoints == OAuthEndpoints()
    for provider, keys in ENDPOINT_KEYS.items():
        assert f"#   {provider}:" in text
        for key in keys:
            assert f"#     {key}:" in text, key
