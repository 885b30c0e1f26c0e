"""The proxy handshakes as pure byte state machines: HTTP CONNECT and SOCKS5 (RFC 1928/1929)."""

from __future__ import annotations

import base64

import pytest

from cliproxy.upstream.handshakes import HTTPConnectHandshake, ProxyError, Socks5Handshake


def _feed_bytewise(hs, data: bytes):
    """Feed one byte at a time; return (all replies, leftover when the tunnel opened)."""
    replies = b""
    for i in range(len(data)):
        out, leftover = hs.receive(data[i : i + 1])
        replies += out
        if leftover is not None:
            return replies, leftover + data[i + 1 :]
    return replies, None


def test_connect_request_names_target_and_basic_credentials():
    hs = HTTPConnectHandshake("api.anthropic.com", 443, "u@x", "p:w")
    first = hs.start()
    assert first.startswith(b"CONNECT api.anthropic.com:443 HTTP/1.1\r\n")
    assert b"Host: api.anthropic.com:443\r\n" in first
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u@x:p:w") + b"\r\n" in first
    assert first.endswith(b"\r\n\r\n")


def test_connect_without_credentials_sends_no_authorization():
    assert b"Proxy-Authorization" not in HTTPConnectHandshake("h", 443).start()


def test_connect_ipv6_target_is_bracketed():
    assert HTTPConnectHandshake("::1", 8443).start().startswith(b"CONNECT [::1]:8443 HTTP/1.1")


def test_connect_answer_split_anywhere_opens_tunnel_and_keeps_extra_bytes():
    hs = HTTPConnectHandshake("h", 443)
    out, leftover = _feed_bytewise(hs, b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nTLS")
    assert out == b""
    assert leftover == b"TLS"
    assert hs.done


@pytest.mark.parametrize(
    "answer, words",
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", ["407", "credentials"]),
        (b"HTTP/1.0 403 Forbidden\r\n\r\n", ["403", "Forbidden"]),
        (b"SSH-2.0-OpenSSH\r\n\r\n", ["malformed"]),
    ],
)
def test_connect_refusals_are_proxy_errors_without_secrets(answer, words):
    hs = HTTPConnectHandshake("h", 443, "user", "topsecret")
    with pytest.raises(ProxyError) as e:
        hs.receive(answer)
    for w in words:
        assert w in str(e.value)
    assert "topsecret" not in str(e.value)


def test_connect_oversized_answer_is_refused():
    hs = HTTPConnectHandshake("h", 443)
    with pytest.raises(ProxyError):
        hs.receive(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000)


def test_socks5_no_auth_with_domain_name_and_leftover():
    hs = Socks5Handshake("example.com", 443)
    assert hs.start() == b"\x05\x01\x00"
    out, leftover = hs.receive(b"\x05\x00")
    assert out == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    assert leftover is None
    # reply with a domain-name bound address, split byte by byte, plus tunnel bytes
    reply = b"\x05\x00\x00\x03\x05proxy\x00\x50" + b"hello"
    out, leftover = _feed_bytewise(hs, reply)
    assert leftover == b"hello"
    assert hs.done


def test_socks5_username_password_then_ipv4_connect():
    hs = Socks5Handshake("10.1.2.3", 8080, "alice", "pw")
    assert hs.start() == b"\x05\x02\x00\x02"
    out, _ = hs.receive(b"\x05\x02")
    assert out == b"\x01\x05alice\x02pw"
    out, _ = hs.receive(b"\x01\x00")
    assert out == b"\x05\x01\x00\x01\x0a\x01\x02\x03\x1f\x90"
    _, leftover = hs.receive(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    assert leftover == b""


def test_socks5_ipv6_target_uses_address_type_4():
    hs = Socks5Handshake("::1", 443)
    hs.start()
    out, _ = hs.receive(b"\x05\x00")
    assert out[:4] == b"\x05\x01\x00\x04"
    assert len(out) == 4 + 16 + 2


def test_socks5_greeting_and_reply_in_one_read():
    hs = Socks5Handshake("h", 1)
    out, leftover = hs.receive(b"\x05\x00" + b"\x05\x00\x00\x01" + bytes(6))
    assert out.startswith(b"\x05\x01\x00\x03")
    assert leftover == b""


@pytest.mark.parametrize(
    "user, answers, words",
    [
        (None, [b"\x05\xff"], ["none of our auth methods", "username"]),
        ("u", [b"\x05\x02", b"\x01\x01"], ["rejected the username/password"]),
        (None, [b"\x05\x00", b"\x05\x05\x00\x01" + bytes(6)], ["connection refused"]),
        (None, [b"\x05\x00", b"\x05\x02\x00\x01" + bytes(6)], ["not allowed by ruleset"]),
        (None, [b"\x04\x00"], ["does not speak SOCKS5"]),
    ],
)
def test_socks5_failures_are_named(user, answers, words):
    hs = Socks5Handshake("target.example", 443, user, "secretpw" if user else None)
    hs.start()
    with pytest.raises(ProxyError) as e:
        for a in answers:
            hs.receive(a)
    for w in words:
        assert w in str(e.value)
    assert "secretpw" not in str(e.value)
