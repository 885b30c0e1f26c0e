"""`cors.allow-origins`, `allowed-hosts` and the new `limits` keys are validated at load."""

from __future__ import annotations

import pytest

from cliproxy.config import ConfigError, parse_config


def test_defaults():
    config = parse_config("port: 8317\n")
    assert config.cors.allow_origins == ()
    assert config.allowed_hosts == ()
    limits = config.limits
    assert (limits.max_connections, limits.max_connections_per_peer) == (4000, 0)
    assert (limits.key_failures_per_minute, limits.key_lockout_seconds) == (20, 60)


def test_origins_are_canonical_and_hosts_lowercase():
    config = parse_config(
        "api-keys: [sk-real-1]\n"
        "cors:\n  allow-origins: ['HTTPS://Panel.Example/', 'http://localhost:3000', '*']\n"
        "allowed-hosts: [Box.LAN, '[::1]']\n"
        "limits:\n  max-connections: 10\n  max-connections-per-peer: 2\n"
        "  key-failures-per-minute: 5\n  key-lockout-seconds: 30\n"
    )
    assert config.cors.allow_origins == ("https://panel.example", "http://localhost:3000", "*")
    assert config.allowed_hosts == ("box.lan", "[::1]")
    assert config.limits.max_connections_per_peer == 2


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("cors:\n  allow-origins: [panel.example]\n", "cors.allow-origins[0]"),
        ("cors:\n  allow-origins: ['https://p.example/app']\n", "cors.allow-origins[0]"),
        ("cors:\n  allow-origins: ['*']\n", "cors.allow-origins"),
        ("allowed-hosts: ['http://box.lan']\n", "allowed-hosts[0]"),
        ("allowed-hosts: ['box.lan:8317']\n", "allowed-hosts[0]"),
        ("limits:\n  max-connections: -1\n", "limits.max-connections"),
    ],
)
def test_bad_values_name_their_key(text, path):
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert e.value.path == path
