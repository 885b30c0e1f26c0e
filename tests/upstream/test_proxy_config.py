"""`proxy-url` parsing, precedence, and the environment fallback."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from cliproxy.upstream.http import UpstreamHTTP
from cliproxy.upstream.proxy import (
    ProxyConfigError,
    effective_proxy_url,
    parse_proxy_url,
    proxy_from_environment,
)


@pytest.mark.parametrize(
    "url, scheme, host, port",
    [
        ("http://proxy.corp:3128", "http", "proxy.corp", 3128),
        ("http://proxy.corp", "http", "proxy.corp", 80),
        ("https://proxy.corp", "https", "proxy.corp", 443),
        ("socks5://127.0.0.1", "socks5", "127.0.0.1", 1080),
        ("SOCKS5H://[::1]:9050", "socks5h", "::1", 9050),
    ],
)
def test_parse_proxy_url_schemes_and_default_ports(url, scheme, host, port):
    spec = parse_proxy_url(url)
    assert (spec.scheme, spec.host, spec.port) == (scheme, host, port)


def test_parse_proxy_url_decodes_userinfo_and_never_shows_it():
    spec = parse_proxy_url("socks5h://us%40er:p%3Ass@127.0.0.1:1080")
    assert (spec.username, spec.password) == ("us@er", "p:ss")
    assert spec.remote_dns
    assert "p:ss" not in repr(spec) and "p:ss" not in spec.redacted
    assert spec.redacted == "socks5h://***@127.0.0.1:1080"


@pytest.mark.parametrize("value", ["direct", "none", " NONE "])
def test_direct_values_mean_no_proxy(value):
    assert parse_proxy_url(value) is None


@pytest.mark.parametrize(
    "value", ["ftp://x:21", "socks4://x", "http://", "x:8080", "http://h:99999"]
)
def test_bad_proxy_urls_raise_config_errors(value):
    with pytest.raises(ProxyConfigError):
        parse_proxy_url(value)


def test_socks5_resolves_locally_and_socks5h_remotely():
    assert not parse_proxy_url("socks5://h").remote_dns
    assert parse_proxy_url("socks5h://h").remote_dns


def test_credential_proxy_beats_global_and_empty_falls_through():
    assert effective_proxy_url("socks5://a", "http://b") == "socks5://a"
    assert effective_proxy_url("", "http://b") == "http://b"
    assert effective_proxy_url("direct", "http://b") == "direct"
    assert effective_proxy_url("", "") == ""


def test_environment_proxy_per_scheme_and_lowercase_names():
    env = {"https_proxy": "http://sec:1", "HTTP_PROXY": "plain:2"}
    assert proxy_from_environment("https", "api.openai.com", 443, env) == "http://sec:1"
    assert proxy_from_environment("http", "api.openai.com", 80, env) == "http://plain:2"
    assert proxy_from_environment("https", "x.com", 443, {"ALL_PROXY": "socks5://s:1"}) == (
        "socks5://s:1"
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.9.9.9", "::1", "a.localhost"])
def test_environment_proxy_never_applies_to_loopback(host):
    assert proxy_from_environment("https", host, 443, {"HTTPS_PROXY": "http://p:1"}) is None


@pytest.mark.parametrize(
    "no_proxy, host, port, bypass",
    [
        ("*", "api.anthropic.com", 443, True),
        ("anthropic.com", "api.anthropic.com", 443, True),
        (".anthropic.com", "anthropic.com", 443, True),
        ("anthropic.com", "notanthropic.com", 443, False),
        ("api.anthropic.com:8443", "api.anthropic.com", 443, False),
        ("api.anthropic.com:443", "api.anthropic.com", 443, True),
        ("10.0.0.0/8", "10.2.3.4", 443, True),
        ("10.0.0.0/8", "11.2.3.4", 443, False),
        (" , foo.com ", "foo.com", 443, True),
    ],
)
def test_no_proxy_rules(no_proxy, host, port, bypass):
    env = {"HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}
    got = proxy_from_environment("https", host, port, env)
    assert (got is None) is bypass


def test_one_client_per_proxy_setting_and_bad_urls_fail_the_request():
    http = UpstreamHTTP(reactor, environ={})
    a = http.client_for("socks5://127.0.0.1:1080")
    assert http.client_for("socks5://127.0.0.1:1080") is a
    assert http.client_for("http://127.0.0.1:3128") is not a
    assert http.client_for(None) is http.client_for("direct")
    d = http.request("POST", "http://127.0.0.1:9/x", headers={}, proxy_url="gopher://x")
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(ProxyConfigError)
