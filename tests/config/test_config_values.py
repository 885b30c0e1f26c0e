"""Value checks and normalisation: sizes, durations, URLs, booleans, listen endpoints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.config._units import parse_duration, parse_size
from tests.config.yamltext import error_of, parse

# -- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,size",
    [
        ("1000", 1000),
        ("32MiB", 32 * 1024 * 1024),
        ("32 mib", 32 * 1024 * 1024),
        ("64KiB", 65536),
        ("64k", 65536),
        ("1MB", 1_000_000),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("12B", 12),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1MiB", "1 parsec", "MiB", "1e3"])
def test_not_sizes(text):
    assert parse_size(text) is None


@pytest.mark.parametrize(
    "text,seconds",
    [("1h", 3600), ("90s", 90), ("1m30s", 90), ("250ms", 0.25), ("1h0m0s", 3600), ("45", 45)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1d", "h", "1h x", "inf", "nan", "1s1"])
def test_not_durations(text):
    assert parse_duration(text) is None


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=59))
def test_duration_minutes_and_seconds_add_up(minutes, seconds):
    assert parse_duration(f"{minutes}m{seconds}s") == minutes * 60 + seconds


@given(st.text(max_size=20))
def test_unit_parsers_never_raise(text):
    parse_size(text)
    parse_duration(text)


# -- our sections --------------------------------------------------------------------------


def test_limits_accept_bytes_or_strings():
    config = parse(
        """\
        limits:
          max-body-size: 1048576
          max-header-size: "16KiB"
          header-timeout-seconds: 2.5
          body-timeout-seconds: 0
        shutdown-grace-seconds: 5
        upstream-timeouts:
          connect-seconds: 3
          headers-seconds: 40
        streaming:
          idle-timeout-seconds: 12
        """
    )
    assert config.limits.max_body_bytes == 1048576
    assert config.limits.max_header_bytes == 16384
    assert config.limits.header_timeout_seconds == 2.5
    assert config.limits.body_timeout_seconds == 0
    assert config.shutdown_grace_seconds == 5
    assert (config.upstream_timeouts.connect_seconds, config.upstream_timeouts.headers_seconds) == (
        3,
        40,
    )
    assert config.streaming.idle_timeout_seconds == 12


def test_defaults_for_our_sections():
    config = parse("port: 8317\n")
    assert config.limits.max_body_bytes == 32 * 1024 * 1024
    assert config.limits.max_header_bytes == 64 * 1024
    assert (config.limits.header_timeout_seconds, config.limits.body_timeout_seconds) == (30, 60)
    assert config.shutdown_grace_seconds == 30
    assert (config.streaming.keepalive_seconds, config.streaming.bootstrap_retries) == (0, 0)
    assert config.streaming.idle_timeout_seconds == 300
    assert (config.upstream_timeouts.connect_seconds, config.upstream_timeouts.headers_seconds) == (
        30,
        120,
    )


@pytest.mark.parametrize(
    "text,path",
    [
        ("limits:\n  max-body-size: 0\n", "limits.max-body-size"),
        ("limits:\n  max-body-size: true\n", "limits.max-body-size"),
        ("shutdown-grace-seconds: -3\n", "shutdown-grace-seconds"),
        ("shutdown-grace-seconds: '30'\n", "shutdown-grace-seconds"),
        ("upstream-timeouts:\n  connect-seconds: .nan\n", "upstream-timeouts.connect-seconds"),
        ("streaming:\n  bootstrap-retries: -1\n", "streaming.bootstrap-retries"),
        ("max-retry-interval: -1\n", "max-retry-interval"),
        ("routing:\n  session-affinity-ttl: forever\n", "routing.session-affinity-ttl"),
        ("routing:\n  session-affinity: 1\n", "routing.session-affinity"),
    ],
)
def test_bad_numbers_are_errors(text, path):
    assert error_of(text).path == path


def test_routing_strategy_aliases_are_canonical():
    assert parse("routing: {strategy: ff}").routing.strategy == "fill-first"
    assert parse("routing: {strategy: RR}").routing.strategy == "round-robin"
    ttl = parse("routing: {session-affinity: true, session-affinity-ttl: 30m}").routing
    assert ttl.session_affinity is True and ttl.session_affinity_ttl == 1800


# -- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", "direct", "DIRECT", "none", "http://p:8080", "https://p", "socks5://u:pw@p:1080/"],
)
def test_proxy_url_accepts(value):
    expected = "direct" if value.lower() in ("direct", "none") else value
    assert parse(f"proxy-url: {value!r}\n").proxy_url == expected


@pytest.mark.parametrize(
    "value", ["socks4://p:1", "p:8080", "http://", "ftp://p", "socks5h://p:99999"]
)
def test_proxy_url_rejects(value):
    err = error_of(f"port: 1\nproxy-url: {value!r}\n")
    assert (err.path, err.line) == ("proxy-url", 2)


def test_socks5h_proxy_is_fine():
    assert parse("proxy-url: socks5h://127.0.0.1:1080\n").proxy_url == "socks5h://127.0.0.1:1080"


@pytest.mark.parametrize("value", ["api.anthropic.com", "//x", "file:///etc/passwd", "http:x"])
def test_base_url_must_be_absolute_http(value):
    err = error_of(f"claude-api-key:\n  - api-key: k\n    base-url: {value!r}\n")
    assert err.path == "claude-api-key[0].base-url" and err.line == 3


def test_base_url_trailing_slash_is_trimmed():
    config = parse("claude-api-key:\n  - {api-key: k, base-url: 'https://gw.example.com/v1/'}\n")
    assert config.claude_api_key[0].base_url == "https://gw.example.com/v1"


# -- listener ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,endpoint",
    [
        ("port: 8317\n", "tcp:port=8317:backlog=1024"),
        ("host: 127.0.0.1\nport: 9000\n", "tcp:port=9000:backlog=1024:interface=127.0.0.1"),
        ("host: '::1'\n", "tcp:port=8317:backlog=1024:interface=\\:\\:1"),
        ("host: '[::1]'\n", "tcp:port=8317:backlog=1024:interface=\\:\\:1"),
        (
            "host: 127.0.0.1\ntls: {enable: true, cert: /c/cert.pem, key: 'C:/k.pem'}\n",
            "ssl:port=8317:privateKey=C\\:/k.pem:certKey=/c/cert.pem:backlog=1024:interface=127.0.0.1",
        ),
        ("listen: 'unix:/run/cliproxy.sock'\nport: 1\n", "unix:/run/cliproxy.sock"),
    ],
)
def test_listen_endpoint(text, endpoint):
    assert parse(text).listen_endpoint() == endpoint


def test_listen_endpoint_strings_parse_as_twisted_reads_them():
    from twisted.internet.endpoints import _parseServer

    endpoint = parse("host: '::1'\nport: 8400\n").listen_endpoint()
    kind, args, kwargs = _parseServer(endpoint, None)
    assert kind == "TCP" and args == (8400, None) and kwargs["interface"] == "::1"


def test_empty_listen_means_host_and_port():
    config = parse("listen: ''\nhost: 127.0.0.1\n")
    assert config.listen is None
    assert config.listen_endpoint() == "tcp:port=8317:backlog=1024:interface=127.0.0.1"


def test_listen_must_look_like_an_endpoint():
    assert error_of("listen: 'port=8317'\n").path == "listen"


def test_tls_needs_cert_and_key_when_enabled():
    assert error_of("tls:\n  enable: true\n  cert: /c\n").path == "tls.key"
    assert parse("tls:\n  enable: false\n").tls.enable is False


# -- top-level scalars we act on -----------------------------------------------------------


def test_api_keys_are_trimmed_and_deduplicated():
    config = parse("api-keys: ['  a ', a, '', b, '   ', b]\n")
    assert config.api_keys == ("a", "b")


def test_secrets_stay_out_of_repr():
    config = parse(
        """\
        api-keys: [sk-client-secret]
        remote-management: {secret-key: mgmt-secret}
        claude-api-key: [{api-key: sk-upstream-secret}]
        ampcode: {upstream-api-key: amp-secret, upstream-api-keys: [{upstream-api-key: amp-two}]}
        """
    )
    text = repr(config)
    for secret in (
        "sk-client-secret",
        "mgmt-secret",
        "sk-upstream-secret",
        "amp-secret",
        "amp-two",
    ):
        assert secret not in text


def test_config_is_frozen():
    config = parse("port: 8317\n")
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.oauth_model_alias["x"] = ()  # type: ignore[index]
