"""Request and error logs written by a running server, read through the management API."""

from __future__ import annotations

import time

import pytest_twisted
import treq

from tests.management.kit import config_file

KEY = "sk-right-key-0123456789abcdef"
KEYS = f"api-keys: [{KEY}]\n"


async def _refused(s) -> str:
    """A request with the right client key for a model nobody serves."""
    response = await treq.post(
        s.url + "/v1/chat/completions?key=" + KEY,
        json={"model": "nope", "messages": [{"role": "user", "content": "secret prompt"}]},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    await response.content()
    assert response.code >= 400
    return response.headers.getRawHeaders("x-request-id")[0]


@pytest_twisted.ensureDeferred
async def test_failed_requests_become_error_logs_kept_up_to_the_limit(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS + "error-logs-max-files: 2\n"))
    for _ in range(3):
        await _refused(s)
        time.sleep(0.01)
    status, body, _ = await s.call("GET", "/request-error-logs")
    assert status == 200 and len(body["files"]) == 2
    name = body["files"][0]["name"]
    assert name.startswith("error-v1-chat-completions-") and name.endswith(".log")
    status, text, headers = await s.call("GET", "/request-error-logs/" + name)
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert status == 200 and "=== REQUEST BODY ===" in text and "secret prompt" in text
    assert "Status: 4" in text and KEY not in text and "key=****" in text
    assert (await s.call("GET", "/request-error-logs/nope.log"))[0] == 404
    assert (await s.call("GET", "/request-error-logs/..%2Fconfig.yaml"))[0] == 404
    logs = list((tmp_path / "logs").iterdir())
    assert all(p.stat().st_mode & 0o077 == 0 for p in logs)
    assert not any("management" in p.name for p in logs)


@pytest_twisted.ensureDeferred
async def test_request_log_writes_every_request_readable_by_id(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS))
    assert (await s.call("PUT", "/request-log", {"value": True}))[0] == 200
    rid = await _refused(s)
    response = await treq.get(s.url + "/healthz")
    await response.content()
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert not any(n.startswith("error-") for n in names)
    assert any(n.startswith("healthz-") for n in names)
    short = "".join(c for c in rid if c.isalnum())[-8:]
    status, text, _ = await s.call("GET", "/request-log-by-id/" + short)
    assert status == 200 and f"Request-ID: {rid}".encode() in text
    assert (await s.call("GET", "/request-error-logs"))[1] == {"files": []}


@pytest_twisted.ensureDeferred
async def test_logs_endpoint_reads_and_clears_the_application_log(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    assert (await s.call("GET", "/logs"))[0] == 400
    assert (await s.call("PUT", "/logging-to-file", {"value": True}))[0] == 200
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "main-20260101T000000.log").write_text("2026-01-01 00:00:00 [info] [x] old\n")
    (logs / "main.log").write_text(
        "2026-01-02 00:00:00 [info] [x] one\n2026-01-03 00:00:00 [warn] [x] two\n"
    )
    status, body, _ = await s.call("GET", "/logs")
    assert status == 200 and body["line-count"] == 3 and body["lines"][-1].endswith("two")
    after = int(time.mktime(time.strptime("2026-01-02 00:00:00", "%Y-%m-%d %H:%M:%S")))
    body = (await s.call("GET", f"/logs?after={after}"))[1]
    assert [line[-3:] for line in body["lines"]] == ["two"]
    assert body["latest-timestamp"] == after + 86400
    assert (await s.call("GET", "/logs?limit=1"))[1]["line-count"] == 1
    assert (await s.call("GET", "/logs?after=x"))[0] == 400
    status, body, _ = await s.call("DELETE", "/logs")
    assert (status, body["success"], body["removed"]) == (200, True, 1)
    assert (logs / "main.log").read_text() == ""


UP_A = "sk-ant-upstream-AAAA1111"
UP_B = "sk-ant-upstream-BBBB2222"


def _two_upstream_keys(claude) -> str:
    models = "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
    entry = f"    base-url: {claude.url}\n" + models
    return (
        KEYS
        + "request-log: true\nrouting:\n  strategy: fill-first\nclaude-api-key:\n"
        + f"  - api-key: {UP_A}\n"
        + entry
        + f"  - api-key: {UP_B}\n"
        + entry
    )


async def _messages(s, prompt: str, stream: bool) -> tuple[str, bytes]:
    body = {"model": "claude-fake", "max_tokens": 20, "stream": stream}
    body["messages"] = [{"role": "user", "content": prompt}]
    response = await treq.post(s.url + "/v1/messages", json=body, headers={"x-api-key": KEY})
    content = await response.content()
    assert response.code == 200, content
    return response.headers.getRawHeaders("x-request-id")[0], content


async def _log_of(s, rid: str) -> str:
    short = "".join(c for c in rid if c.isalnum())[-8:]
    status, text, _ = await s.call("GET", "/request-log-by-id/" + short)
    assert status == 200
    return text.decode() if isinstance(text, bytes) else str(text)


@pytest_twisted.ensureDeferred
async def test_request_log_has_every_upstream_call_masked_and_capped(
    tmp_path, served_factory, start_fake
):
    from tests.fakes import FakeClaude, Turn

    claude = start_fake(FakeClaude, keys={UP_A, UP_B})
    s = served_factory(config_file(tmp_path, _two_upstream_keys(claude)))
    claude.script_error(429, "slow down please", retry_after=30)
    claude.script_turn(Turn(text="upstream says hi"))
    rid, _ = await _messages(s, "first prompt", stream=False)
    text = await _log_of(s, rid)
    client_part, rest = text.split("=== API REQUEST ===", 1)
    assert "first prompt" in client_part
    assert text.count("=== API REQUEST ===") == 2 and text.count("=== API RESPONSE ===") == 2
    first, second = rest.split("=== API REQUEST ===")
    assert f"Upstream: POST {claude.url}/v1/messages" in first
    assert '"model":"claude-fake-1"' in first and "first prompt" in first
    assert "Status: 429" in first and "slow down please" in first
    assert "Status: 200" in second and "upstream says hi" in second
    assert second.index("=== API RESPONSE ===") < second.index("=== RESPONSE ===")
    for secret in (UP_A, UP_B, KEY):
        assert secret not in text
    assert "Authorization: Bearer sk-a****" in first and "X-Api-Key: sk-r****" in client_part

    # a streamed answer is logged as it came; a big prompt is capped
    claude.script_turn(Turn(text="streamed words"))
    rid, got = await _messages(s, "y" * (100 * 1024), stream=True)
    assert b"streamed" in got
    text = await _log_of(s, rid)
    api_request, api_response = text.split("=== API REQUEST ===", 1)[1].split(
        "=== API RESPONSE ===", 1
    )
    assert "more bytes not logged]" in api_request
    assert "event: message_start" in api_response and "streamed" in api_response
