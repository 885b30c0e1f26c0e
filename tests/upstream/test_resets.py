"""Provider quota resets parsed into a cooldown (cliproxy.upstream.resets)."""

from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from twisted.web.http_headers import Headers

from cliproxy.upstream.resets import MAX_RESET, MIN_RESET, parse_go_duration, quota_reset
from tests.fakes import FakeCodex, codex_usage_limit_reply
from tests.reliability.kit import call
from tests.serving_kit import providers

NOW = 1_700_000_000.0
CHAT = {"model": "gpt-codex-fake", "messages": [{"role": "user", "content": "hi"}]}


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


@pytest_twisted.ensureDeferred
async def test_all_cooling_error_says_until_when_and_the_providers_reason(start_fake, start_proxy):
    codex = start_fake(FakeCodex, keys={"sk-codex-test-1"})
    proxy = start_proxy(providers(codex=codex))
    proxy.clock.advance(NOW)
    codex.script("POST", codex.generation_path, codex_usage_limit_reply(3600, now=NOW))
    first = await call(proxy.url, "POST", "/v1/chat/completions", CHAT)
    assert first.status == 429  # the provider's own 429, relayed
    again = await call(proxy.url, "POST", "/v1/chat/completions", CHAT)  # nothing sent
    err = again.json()["error"]
    assert (again.status, err["code"]) == (429, "model_cooldown")
    assert int(again.header("retry-after")) == 3600
    reset_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(NOW + 3600))
    assert f"the first frees in 1h0m0s ({reset_at})" in err["message"]
    assert (
        f"is rate-limited (HTTP 429: Codex usage_limit_reached resets at {reset_at})"
        in err["message"]
    )
    assert len(codex.requests) == 1
    proxy.clock.advance(3601)
    assert (await call(proxy.url, "POST", "/v1/chat/completions", CHAT)).status == 200


def test_a_plain_retry_after_gives_no_reason():
    from cliproxy.routing.classify import retry_hint

    hint = retry_hint(Headers({b"retry-after": [b"7"]}), b"{}", NOW)
    assert (hint.seconds, hint.reason) == (7, "")
    hint = retry_hint(None, _body({"type": "usage_limit_reached", "resets_in_seconds": 9}), NOW)
    assert hint.seconds == 9 and hint.reason == "Codex usage_limit_reached resets"
