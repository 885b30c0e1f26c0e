"""Provider quota resets parsed into a cooldown (cliproxy.upstream.resets)."""

from __future__ import annotations

import json

import pytest
from twisted.web.http_headers import Headers

from cliproxy.upstream.resets import MAX_RESET, MIN_RESET, parse_go_duration, quota_reset

NOW = 1_700_000_000.0


def _body(error: dict) -> bytes:
    return json.dumps({"error": error}).encode()


def test_codex_resets_in_seconds_and_resets_at():
    err = {"type": "usage_limit_reached", "resets_in_seconds": 1234, "resets_at": NOW + 99}
    got = quota_reset(None, _body(err), NOW)
    assert got is not None and got.seconds == 1234 and "usage_limit_reached" in got.reason
    got = quota_reset(None, _body({"type": "usage_limit_reached", "resets_at": NOW + 99}), NOW)
    assert got is not None and got.seconds == 99


def test_google_retry_delay_then_quota_reset_delay():
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "metadata": {"quotaResetDelay": "1h2m3.5s"},
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
    ]
    got = quota_reset(None, _body({"code": 429, "details": details}), NOW)
    assert got is not None and got.seconds == 12.5 and "RetryInfo" in got.reason
    got = quota_reset(None, _body({"code": 429, "details": details[:1]}), NOW)
    assert got is not None and got.seconds == 3723.5
    stamp = {"metadata": {"quotaResetTimeStamp": "2023-11-14T22:13:30Z"}}  # NOW + 10 s
    got = quota_reset(None, json.dumps([{"error": {"details": [stamp]}}]).encode(), NOW)
    assert got is not None and got.seconds == pytest.approx(10.0)


def test_anthropic_rejected_window_wins_over_the_generic_reset():
    h = Headers()
    h.setRawHeaders(b"anthropic-ratelimit-unified-status", [b"rejected"])
    h.setRawHeaders(b"anthropic-ratelimit-unified-reset", [str(int(NOW + 60)).encode()])
    h.setRawHeaders(b"anthropic-ratelimit-unified-5h-status", [b"rejected"])
    h.setRawHeaders(b"anthropic-ratelimit-unified-5h-reset", [str(int(NOW + 600)).encode()])
    h.setRawHeaders(b"anthropic-ratelimit-unified-7d-status", [b"allowed"])
    h.setRawHeaders(b"anthropic-ratelimit-unified-7d-reset", [str(int(NOW + 86000)).encode()])
    got = quota_reset(h, b"{}", NOW)
    assert got is not None and got.seconds == 600 and "5h" in got.reason
    g = Headers({b"anthropic-ratelimit-unified-reset": [str(int(NOW + 42)).encode()]})
    got = quota_reset(g, b"", NOW)
    assert got is not None and got.seconds == 42


def test_resets_are_clamped_and_junk_is_ignored():
    assert quota_reset(None, _body({"resets_in_seconds": 10**9}), NOW).seconds == MAX_RESET
    assert quota_reset(None, _body({"resets_at": NOW - 5}), NOW).seconds == MIN_RESET
    for junk in (b"", b"not json", b"[]", _body({"resets_in_seconds": "soon"}), b'{"error":"x"}'):
        assert quota_reset(None, junk, NOW) is None
    bad = Headers({b"anthropic-ratelimit-unified-reset": [b"whenever"]})
    assert quota_reset(bad, b"", NOW) is None


def test_go_durations():
    assert parse_go_duration("373.801628ms") == pytest.approx(0.373801628)
    assert parse_go_duration("2m") == 120
    assert parse_go_duration("1h30m") == 5400
    for bad in ("", "12", "abc", "-3s", "3 s"):
        assert parse_go_duration(bad) is None


def test_routing_rests_a_credential_until_the_announced_reset():
    from cliproxy.routing.classify import parse_retry_after

    body = _body({"type": "usage_limit_reached", "resets_in_seconds": 3600})
    h = Headers({b"retry-after": [b"5"]})
    assert parse_retry_after(h, body, NOW) == 3600  # the provider's reset beats Retry-After
    assert parse_retry_after(h, b"{}", NOW) == 5
