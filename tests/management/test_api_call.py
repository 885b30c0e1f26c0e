"""api-call: a call on a credential's behalf, `$TOKEN$` substituted, against a loopback fake."""

from __future__ import annotations

import json
import socket
import time

import pytest_twisted
from twisted.logger import globalLogPublisher

from cliproxy.config import load_config
from cliproxy.credentials.from_config import credentials_from_config
from tests.fakes import FakeClaude, Reply
from tests.management.kit import config_file

FILE_TOKEN = "tok-file-4242"
CONF_KEY = "sk-conf-9191"


def _account(tmp_path, name="me.json", **record):
    body = {"type": "claude", "access_token": FILE_TOKEN, "email": "me@example.com", **record}
    (tmp_path / "auth" / name).write_text(json.dumps(body))


async def _models_as_account(s, fake, method="GET", **headers):
    """api-call: GET the fake's /v1/models with me.json's token."""
    call = {
        "auth_index": "me.json",
        "method": method,
        "url": fake.url + "/v1/models",
        "header": {"Authorization": "Bearer $TOKEN$", **headers},
    }
    return await s.call("POST", "/api-call", call)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest_twisted.ensureDeferred
async def test_token_of_an_auth_file_is_substituted_and_the_reply_relayed(
    tmp_path, served_factory, start_fake
):
    fake = start_fake(FakeClaude, keys={FILE_TOKEN})
    path = config_file(tmp_path)
    _account(tmp_path)
    s = served_factory(path)
    headers = {"anthropic-version": "2023-06-01"}
    status, body, _ = await _models_as_account(s, fake, "get", **headers)
    assert status == 200, body
    assert set(body) == {"status_code", "header", "body"}
    assert body["status_code"] == 200
    assert body["header"]["Content-Type"][0].startswith("application/json")
    models = json.loads(body["body"])
    assert models["data"], models
    assert fake.last.header("authorization") == f"Bearer {FILE_TOKEN}"
    assert fake.last.method == "GET"


@pytest_twisted.ensureDeferred
async def test_config_key_posts_data_and_upstream_errors_come_back_as_status_code(
    tmp_path, served_factory, start_fake
):
    fake = start_fake(FakeClaude, keys={CONF_KEY})
    fake.script("POST", "/v1/echo", lambda rec: Reply(status=201, json={"got": rec.json}))
    path = config_file(tmp_path, f"claude-api-key:\n  - api-key: {CONF_KEY}\n")
    [cred] = credentials_from_config(load_config(str(path)))
    s = served_factory(path)
    status, body, _ = await s.call(
        "POST",
        "/api-call",
        {
            "authIndex": cred.id,
            "method": "POST",
            "url": fake.url + "/v1/echo",
            "header": {"x-api-key": "$TOKEN$", "Content-Type": "application/json"},
            "data": '{"n": 1}',
        },
    )
    assert status == 200 and body["status_code"] == 201, body
    assert json.loads(body["body"]) == {"got": {"n": 1}}
    # no credential selected: $TOKEN$ stays as it is, and the upstream's 401 is relayed
    status, body, _ = await s.call(
        "POST",
        "/api-call",
        {"method": "GET", "url": fake.url + "/v1/models", "header": {"x-api-key": "$TOKEN$"}},
    )
    assert status == 200 and body["status_code"] == 401
    assert json.loads(body["body"])["error"]["type"] == "authentication_error"
    assert fake.last.header("x-api-key") == "$TOKEN$"


@pytest_twisted.ensureDeferred
async def test_bad_bodies_are_refused_before_any_call(tmp_path, served_factory, start_fake):
    fake = start_fake(FakeClaude)
    path = config_file(tmp_path)
    _account(tmp_path, "empty.json", access_token="")
    s = served_factory(path)
    cases = [
        (b"not json", "invalid body"),
        (b"[1]", "invalid body"),
        (json.dumps({"url": fake.url}).encode(), "missing method"),
        (json.dumps({"method": "GET"}).encode(), "missing url"),
        (json.dumps({"method": "GET", "url": "/v1/models"}).encode(), "invalid url"),
        (json.dumps({"method": "GET", "url": "file:///etc/passwd"}).encode(), "invalid url"),
        (json.dumps({"method": "GET", "url": "ftp://127.0.0.1/x"}).encode(), "invalid url"),
        (
            json.dumps({"method": "GET", "url": fake.url, "proxy_url": "gopher://x"}).encode(),
            "invalid proxy_url",
        ),
        (
            json.dumps({"method": "GET", "url": fake.url, "header": {"a": "b\r\nc: d"}}).encode(),
            "failed to build request",
        ),
        (
            json.dumps({"method": "GET", "url": fake.url, "header": {"a": 1}}).encode(),
            "invalid body",
        ),
        (
            json.dumps(
                {
                    "auth_index": "empty.json",
                    "method": "GET",
                    "url": fake.url,
                    "header": {"Authorization": "Bearer $TOKEN$"},
                }
            ).encode(),
            "auth token not found",
        ),
    ]
    for raw, message in cases:
        status, body, _ = await s.call("POST", "/api-call", raw=raw)
        assert (status, body) == (400, {"error": message}), raw
    assert fake.requests == []
    status, _, _ = await s.call("POST", "/api-call", {"method": "GET", "url": fake.url}, key="no")
    assert status == 401


@pytest_twisted.ensureDeferred
async def test_unreachable_upstream_is_502_and_nothing_secret_is_logged(tmp_path, served_factory):
    path = config_file(tmp_path)
    _account(tmp_path)
    s = served_factory(path)
    seen: list[str] = []

    def observer(event):
        seen.append(repr(event))

    globalLogPublisher.addObserver(observer)
    try:
        status, body, _ = await s.call(
            "POST",
            "/api-call",
            {
                "auth_index": "me.json",
                "method": "POST",
                "url": f"http://127.0.0.1:{_closed_port()}/v1/x?key=query-secret-77",
                "header": {"Authorization": "Bearer $TOKEN$"},
                "data": "body-secret-55",
            },
        )
    finally:
        globalLogPublisher.removeObserver(observer)
    assert (status, body) == (502, {"error": "request failed"})
    logged = "\n".join(seen)
    assert "api-call failed" in logged
    for secret in (FILE_TOKEN, "query-secret-77", "body-secret-55"):
        assert secret not in logged


@pytest_twisted.ensureDeferred
async def test_an_expired_account_token_is_refreshed_before_the_call(
    tmp_path, served_factory, start_fake
):
    from tests.fakes.oauth import FakeOAuth

    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.refresh_tokens.add("rt-account-1")
    fake = start_fake(FakeClaude)
    endpoints = f"oauth-endpoints:\n  claude:\n    token-url: {oauth.url}/v1/oauth/token\n"
    path = config_file(tmp_path, endpoints)
    _account(tmp_path, refresh_token="rt-account-1", expired="2020-01-01T00:00:00Z")
    s = served_factory(path)
    s.clock.advance(time.time())  # the account's token expired long ago
    status, body, _ = await _models_as_account(s, fake)
    assert status == 200 and body["status_code"] == 200, body
    sent = fake.last.header("authorization").removeprefix("Bearer ")
    assert sent != FILE_TOKEN and sent in oauth.access_tokens
    assert json.loads((tmp_path / "auth" / "me.json").read_text())["access_token"] == sent
