"""Header helpers: the case-insensitive map executors build with, and the passthrough filter."""

from __future__ import annotations

from twisted.web.http_headers import Headers

from cliproxy.upstream.headers import HeaderMap, filter_response_headers, lookup


def test_header_map_overrides_whatever_the_case_and_keeps_order():
    h = HeaderMap({"Content-Type": "application/json", "x-api-key": "builtin"})
    h["X-Api-Key"] = "custom"
    h["Accept"] = "text/event-stream"
    assert h.to_dict() == {
        "Content-Type": "application/json",
        "X-Api-Key": "custom",
        "Accept": "text/event-stream",
    }
    assert "ACCEPT" in h and h.get("accept") == "text/event-stream"
    assert h.pop("content-type") == "application/json"
    assert len(h) == 2


def test_lookup_is_case_insensitive():
    assert lookup({"Anthropic-Beta": "a"}, "anthropic-beta") == "a"
    assert lookup({}, "x") is None


def test_passthrough_drops_hop_by_hop_encoding_cookies_and_gateway_headers():
    headers = Headers(
        {
            b"Content-Type": [b"application/json"],
            b"Content-Length": [b"10"],
            b"Content-Encoding": [b"gzip"],
            b"Transfer-Encoding": [b"chunked"],
            b"Connection": [b"keep-alive, X-Hop"],
            b"X-Hop": [b"1"],
            b"Set-Cookie": [b"a=b"],
            b"X-Litellm-Model": [b"m"],
            b"Helicone-Id": [b"h"],
            b"Cf-Aig-Cache": [b"c"],
            b"Anthropic-Ratelimit-Requests-Remaining": [b"9"],
            b"X-Request-Id": [b"r1"],
        }
    )
    kept = {
        name.lower(): values for name, values in filter_response_headers(headers.getAllRawHeaders())
    }
    assert kept == {
        b"content-type": [b"application/json"],
        b"anthropic-ratelimit-requests-remaining": [b"9"],
        b"x-request-id": [b"r1"],
    }
