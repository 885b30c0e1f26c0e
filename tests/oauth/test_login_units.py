"""The pure parts of a login: PKCE, authorize URLs, token request bodies, pasted input."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.oauth.callback import parse_pasted
from cliproxy.credentials.oauth.pkce import PKCE, challenge_of, new_state
from cliproxy.credentials.oauth.providers import CLAUDE, CODEX, GEMINI, spec_for
from tests.fakes import pkce_challenge


def test_pkce_is_s256_over_96_random_bytes():
    a, b = PKCE.new(), PKCE.new()
    assert a.verifier != b.verifier and len(a.verifier) == 128
    assert re.fullmatch(r"[A-Za-z0-9_-]{128}", a.verifier)
    assert a.challenge == challenge_of(a.verifier) == pkce_challenge(a.verifier)
    assert "verifier" not in repr(a)
    assert re.fullmatch(r"[0-9a-f]{32}", new_state()) and new_state() != new_state()


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_authorize_urls_carry_each_providers_parameters():
    ep = OAuthEndpoints()
    kwargs = {"redirect_uri": "http://localhost:1/cb", "state": "s" * 32, "challenge": "c" * 43}
    claude = CLAUDE.authorize_url(ep, **kwargs)
    assert claude.startswith("https://claude.ai/oauth/authorize?code=true&")
    assert query(claude)["scope"] == (
        "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
    )
    codex = query(CODEX.authorize_url(ep, **kwargs))
    assert codex["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert (codex["prompt"], codex["id_token_add_organizations"]) == ("login", "true")
    assert codex["codex_cli_simplified_flow"] == "true"
    assert codex["scope"] == "openid email profile offline_access"
    google = GEMINI.authorize_url(ep, **kwargs)
    assert google.startswith("https://accounts.google.com/o/oauth2/auth?")
    g = query(google)
    assert (g["access_type"], g["prompt"], g["response_type"]) == ("offline", "consent", "code")
    for q in (codex, g, query(claude)):
        assert q["code_challenge_method"] == "S256" and q["state"] == "s" * 32


def test_default_redirects_use_the_providers_ports():
    assert CLAUDE.redirect_uri() == "http://localhost:54545/callback"
    assert CODEX.redirect_uri() == "http://localhost:1455/auth/callback"
    assert GEMINI.redirect_uri() == "http://localhost:8085/oauth2callback"
    assert GEMINI.redirect_uri(9000) == "http://localhost:9000/oauth2callback"


def test_exchange_and_refresh_bodies():
    claude = CLAUDE.exchange_fields(code="c", state="s", redirect_uri="r", verifier="v")
    assert claude == {
        "grant_type": "authorization_code",
        "client_id": CLAUDE.client_id,
        "code": "c",
        "redirect_uri": "r",
        "code_verifier": "v",
        "state": "s",
    }
    google = GEMINI.exchange_fields(code="c", state="s", redirect_uri="r", verifier="v")
    assert (
        google["client_secret"] == "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" and "state" not in google
    )
    assert CODEX.refresh_fields("rt") == {
        "client_id": CODEX.client_id,
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "scope": "openid profile email",
    }
    assert GEMINI.refresh_fields("rt", "own-client", "own-secret")["client_id"] == "own-client"


def test_spec_names():
    assert spec_for("gemini-cli") is GEMINI and spec_for("gemini") is GEMINI
    assert spec_for("Claude") is CLAUDE
    with pytest.raises(KeyError):
        spec_for("vertex")


@pytest.mark.parametrize(
    "text, code, state",
    [
        ("http://localhost:54545/callback?code=abc&state=xyz", "abc", "xyz"),
        ("  'http://localhost:1455/auth/callback?code=a%2Fb&state=s1'  ", "a/b", "s1"),
        ("localhost:8085/oauth2callback?state=s2&code=c2&scope=x", "c2", "s2"),
        ("?code=c3&state=s3", "c3", "s3"),
        ("code=c4&state=s4", "c4", "s4"),
        ("abc#xyz", "abc", "xyz"),  # Claude's page shows code#state
        ("http://localhost:54545/callback?code=abc#xyz", "abc", "xyz"),
        ("4/0AanRRrt-just-a-code", "4/0AanRRrt-just-a-code", None),
    ],
)
def test_pasted_input_in_every_form(text, code, state):
    got = parse_pasted(text)
    assert (got.code, got.state, got.via) == (code, state, "paste")


def test_pasted_errors_and_junk():
    got = parse_pasted("http://localhost:1455/auth/callback?error=access_denied&state=s")
    assert (got.error, got.code) == ("access_denied", "")
    assert parse_pasted("") is None
    assert parse_pasted("two words") is None
    assert parse_pasted("http://localhost:1455/auth/callback?foo=bar") is None
