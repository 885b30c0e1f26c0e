"""check_exposure: no serving other machines without real client keys."""

from __future__ import annotations

import pytest

from cliproxy.config import ConfigError, check_exposure, load_config, parse_config
from cliproxy.config.exposure import endpoint_interface, is_loopback_host, split_endpoint

NO_KEYS = parse_config("port: 8317\n", "config.yaml")
REAL_KEYS = parse_config("api-keys: [sk-real-key-9f3a]\n", "config.yaml")
EXAMPLE_KEYS = parse_config("api-keys: [your-api-key-1, your-api-key-2]\n", "config.yaml")
OWN_PLACEHOLDER = parse_config("api-keys: [sk-real, your-api-key-here]\n", "config.yaml")

LOCAL = [
    "tcp:8317:interface=127.0.0.1",
    "tcp:port=8317:interface=127.0.0.2",
    "tcp:8317:127.0.0.1",
    "tcp:port=8317:interface=localhost",
    "tcp:port=8317:interface=\\:\\:1",
    "tcp6:port=8317:interface=\\:\\:1",
    "tcp6:8317:50:\\:\\:1",
    "tcp:port=8317:interface=\\:\\:ffff\\:127.0.0.1",
    "ssl:port=8443:privateKey=/k.pem:certKey=/c.pem:interface=127.0.0.1",
    "unix:/run/cliproxy.sock",
    "unix:address=/tmp/c.sock:mode=600",
]
EXPOSED = [
    "tcp:8317",
    "tcp:port=8317",
    "tcp:port=8317:interface=0.0.0.0",
    "tcp:port=8317:interface=192.168.1.20",
    "tcp:port=8317:interface=myhost.example.com",
    "tcp6:8317",
    "tcp6:port=8317:interface=\\:\\:",
    "ssl:8443:privateKey=/k.pem",
    "systemd:domain=INET:index=0",
]


@pytest.mark.parametrize("endpoint", LOCAL)
def test_local_endpoints_need_no_keys(endpoint):
    check_exposure(NO_KEYS, endpoint)
    check_exposure(EXAMPLE_KEYS, endpoint)


@pytest.mark.parametrize("endpoint", EXPOSED)
def test_exposed_endpoints_without_keys_are_refused(endpoint):
    with pytest.raises(ConfigError) as info:
        check_exposure(NO_KEYS, endpoint)
    err = info.value
    assert err.path == "api-keys" and "api-keys is empty" in err.message
    assert str(err).startswith("api-keys: listening on")


def test_error_names_the_config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("host: 0.0.0.0\n")
    config = load_config(str(path))
    with pytest.raises(ConfigError) as info:
        check_exposure(config, config.listen_endpoint())
    assert str(info.value).startswith(
        f"{path}: api-keys: listening on 'tcp:port=8317:backlog=1024:interface=0.0.0.0'"
    )


@pytest.mark.parametrize("endpoint", EXPOSED)
def test_exposed_endpoints_with_real_keys_are_fine(endpoint):
    check_exposure(REAL_KEYS, endpoint)


@pytest.mark.parametrize("config", [EXAMPLE_KEYS, OWN_PLACEHOLDER])
def test_example_keys_count_as_no_keys(config):
    with pytest.raises(ConfigError, match="example key 'your-api-key"):
        check_exposure(config, "tcp:port=8317")


def test_default_host_of_an_upstream_config_is_all_interfaces():
    config = parse_config("port: 8317\napi-keys: [your-api-key-1]\n", "config.yaml")
    with pytest.raises(ConfigError, match="all interfaces"):
        check_exposure(config, config.listen_endpoint())


def test_error_never_shows_real_keys():
    config = parse_config("api-keys: [sk-secret, your-api-key-3]\n")
    with pytest.raises(ConfigError) as info:
        check_exposure(config, "tcp:8317")
    assert "sk-secret" not in str(info.value)


def test_endpoint_parsing_matches_twisted():
    from twisted.internet.endpoints import _parse

    for endpoint in LOCAL + EXPOSED + ["tcp:port=1:interface=a\\=b", "x:a=b=c"]:
        assert split_endpoint(endpoint) == _parse(endpoint)


def test_endpoint_interface():
    assert endpoint_interface("tcp:8317") == ""
    assert endpoint_interface("tcp6:8317") == "::"
    assert endpoint_interface("ssl:443:k.pem:c.pem:SSLv23_METHOD:10.0.0.1") == "10.0.0.1"
    assert endpoint_interface("unix:/x") is None


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback
