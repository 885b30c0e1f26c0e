"""Host and Origin decisions (cliproxy.web.origin), as pure functions."""

from __future__ import annotations

import pytest

from cliproxy.web.origin import host_allowed, host_name, judge_origin

OWN = "http://localhost:8317"


@pytest.mark.parametrize(
    ("host", "name"),
    [
        (b"localhost:8317", "localhost"),
        (b"LocalHost", "localhost"),
        (b"[::1]:8317", "[::1]"),
        (b"127.0.0.1", "127.0.0.1"),
        (b"example.com.:80", "example.com"),
        (b"[::1]x", None),
        (b"a:b", None),
        (b"\xff", None),
    ],
)
def test_host_name(host, name):
    assert host_name(host) == name


def test_loopback_connections_serve_loopback_names_and_allowed_hosts_only():
    assert host_allowed(b"localhost:1", (), on_loopback=True)
    assert host_allowed(b"[::1]:1", (), on_loopback=True)
    assert not host_allowed(b"attacker.example:8317", (), on_loopback=True)
    assert not host_allowed(None, (), on_loopback=True)
    assert host_allowed(b"box.lan", ("box.lan",), on_loopback=True)
    assert host_allowed(b"anything", ("*",), on_loopback=True)


def test_other_addresses_are_checked_once_allowed_hosts_is_set():
    assert host_allowed(b"whatever", (), on_loopback=False)
    assert not host_allowed(b"whatever", ("box.lan",), on_loopback=False)
    assert not host_allowed(b"localhost", ("box.lan",), on_loopback=False)


def test_no_origin_is_a_non_browser_client():
    assert judge_origin(None, None, OWN, ()).allowed
    assert judge_origin(None, b"none", OWN, ()).allowed
    assert not judge_origin(None, b"cross-site", OWN, ()).allowed


def test_own_origin_is_served_without_cors_and_default_ports_compare_equal():
    assert judge_origin(b"http://localhost:8317", b"same-origin", OWN, ()).cors is None
    assert judge_origin(b"http://localhost:8317", None, OWN, ()).allowed
    assert judge_origin(b"http://LOCALHOST", None, "http://localhost:80", ()).allowed
    assert not judge_origin(b"https://localhost:8317", None, OWN, ()).allowed


def test_foreign_origins_need_the_allow_list():
    assert not judge_origin(b"https://evil.example", None, OWN, ()).allowed
    assert not judge_origin(b"null", None, OWN, ()).allowed
    ok = judge_origin(b"https://panel.example", b"cross-site", OWN, ("https://panel.example",))
    assert ok.allowed and ok.cors == b"https://panel.example"
    star = judge_origin(b"https://x.example", b"cross-site", OWN, ("*",))
    assert star.allowed and star.cors == b"*"
    # a cross-site fetch that claims our origin is still cross-site
    assert not judge_origin(b"http://localhost:8317", b"cross-site", OWN, ()).allowed
