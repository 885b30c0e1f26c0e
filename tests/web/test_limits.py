"""Request limits: body cap (413 before reading it), header cap (431), read timeouts (408)."""

from __future__ import annotations

from tests.web.httpwire import Wire
from tests.web.test_surface import KEYS_YAML, make_site

LIMITS = (
    KEYS_YAML
    + """
limits:
  max-body-size: 1024
  header-timeout-seconds: 5
  body-timeout-seconds: 7
  max-header-size: 2048
"""
)


def test_declared_oversized_body_gets_413_before_any_body_byte():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    [a] = wire.answers()
    assert a.status == 413
    assert a.json()["error"]["type"] == "invalid_request_error"
    assert "104857600" in a.json()["error"]["message"]
    assert wire.transport.write_closed
    # the rest of the body is ignored, not buffered
    wire.send(b"x" * 65536)
    assert (
        wire.channel.requests[-1].content is None or wire.channel.requests[-1].content.tell() == 0
    )


def test_expect_continue_with_oversized_body_gets_413_not_100():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5000\r\n\r\n"
    )
    raw = wire.transport.value()
    assert not raw.startswith(b"HTTP/1.1 100")
    [a] = wire.answers()
    assert a.status == 413
    assert a.json()["error"]["type"] == "request_too_large"  # Claude family shape


def test_chunked_body_over_the_cap_gets_413():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(
        b"POST /v1beta/models/x:generateContent HTTP/1.1\r\nHost: x\r\n"
        b"x-goog-api-key: sk-client-alpha-1111\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for _ in range(3):
        wire.send(b"200\r\n" + b"a" * 0x200 + b"\r\n")
    [a] = wire.answers()
    assert a.status == 413
    assert a.json()["error"]["status"] == "INVALID_ARGUMENT"  # Gemini family shape


def test_body_under_the_cap_is_served():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"{" * 1000)
    [a] = wire.answers()
    assert a.status == 405  # read whole, then answered: /healthz takes no POST
    assert a.header("content-type") == "application/json"


def test_oversized_headers_get_431():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    for i in range(40):
        wire.send(b"X-Pad-%d: %s\r\n" % (i, b"p" * 100))
    [a] = wire.answers()
    assert a.status == 431
    assert wire.transport.write_closed


def test_one_huge_header_line_gets_431():
    site, _, _ = make_site(LIMITS)
    wire = Wire(site)
    wire.send(b"GET /v1/models HTTP/1.1\r\nX-Big: " + b"b" * 5000)
    [a] = wire.answers()
    assert a.status == 431


def test_slow_headers_get_408():
    site, _, clock = make_site(LIMITS)
    wire = Wire(site)
    wire.send(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    clock.advance(4.9)
    assert wire.answers() == []
    clock.advance(0.2)
    [a] = wire.answers()
    assert a.status == 408
    assert "headers" in a.json()["error"]["message"]
    clock.advance(2.1)
    assert wire.transport.aborted


def test_slow_body_gets_408():
    site, _, clock = make_site(LIMITS)
    wire = Wire(site)
    wire.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"x-api-key: sk-client-alpha-1111\r\n\r\n{"
    )
    clock.advance(6.9)
    assert wire.answers() == []
    clock.advance(0.2)
    [a] = wire.answers()
    assert a.status == 408
    assert "body" in a.json()["error"]["message"]


def test_idle_keepalive_connection_is_closed_without_an_answer():
    site, _, clock = make_site(LIMITS)
    wire = Wire(site)
    wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    [a] = wire.answers()
    assert a.status == 200
    before = wire.transport.value()
    clock.advance(5.1)
    assert wire.transport.value() == before
    assert wire.transport.disconnecting


def test_limit_change_applies_to_new_connections():
    from cliproxy.config import parse_config

    site, store, _ = make_site(LIMITS)
    store.replace(parse_config(LIMITS.replace("max-body-size: 1024", "max-body-size: 10")))
    wire = Wire(site)
    wire.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
    [a] = wire.answers()
    assert a.status == 413
