"""Token endpoint calls: what their answers and failures mean (`credentials/oauth/tokens.py`)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.client import ResponseNeverReceived
from twisted.web.http_headers import Headers

from cliproxy.credentials.net import body_transport
from cliproxy.credentials.oauth.tokens import (
    OAuthError,
    describe_network_error,
    parse_error_body,
    read_limited,
    token_request,
)
from cliproxy.upstream.oauth_call import BufferedResponse


class _Endpoint:
    """An `HTTPRequester` answering every request with one canned response (or failure)."""

    def __init__(self, status: int = 200, body: object = None, error: Exception | None = None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = Headers({b"content-type": [b"application/json"]})
        self.response = BufferedResponse(status, data, headers)
        self.response.code = status
        self.error = error
        self.sent: list[dict] = []

    def request(self, method, url, *, headers=None, body=b"", proxy_url=None, timeout_headers=None):
        self.sent.append({"method": method, "url": url, "headers": headers, "body": body})
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(self.response)


def test_rfc6749_and_openai_error_bodies_are_both_understood():
    assert parse_error_body(b'{"error":"invalid_grant","error_description":"gone"}') == (
        "invalid_grant",
        "gone",
    )
    assert parse_error_body(b'{"error":{"code":"refresh_token_reused","message":"m"}}') == (
        "refresh_token_reused",
        "m",
    )
    assert parse_error_body(b"<html>") == ("", "")


def test_network_errors_are_described_from_inside_twisted_wrappers():
    tls = SSL.Error([("SSL routines", "", "certificate verify failed")])
    text = describe_network_error(ResponseNeverReceived([Failure(tls)]))
    assert "certificate verify failed" in text


@pytest_twisted.ensureDeferred
async def test_form_refresh_returns_the_parsed_answer():
    endpoint = _Endpoint(200, {"access_token": "new", "expires_in": 3600})
    answer = await token_request(
        endpoint, "https://auth.test/token", {"grant_type": "refresh_token"}, json_body=False
    )
    assert answer["access_token"] == "new"
    sent = endpoint.sent[0]
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["body"] == b"grant_type=refresh_token"


@pytest_twisted.ensureDeferred
async def test_invalid_grant_means_a_new_login_and_never_echoes_the_token():
    endpoint = _Endpoint(400, {"error": "invalid_grant", "error_description": "revoked"})
    with pytest.raises(OAuthError) as e:
        await token_request(
            endpoint,
            "https://auth.test/token?x=1",
            {"refresh_token": "rt-secret"},
            json_body=True,
        )
    assert e.value.needs_login and e.value.status == 400 and not e.value.transient
    assert "invalid_grant: revoked" in e.value.message
    assert "rt-secret" not in e.value.message


@pytest_twisted.ensureDeferred
async def test_unreachable_endpoint_is_transient_and_says_why():
    tls = SSL.Error([("SSL routines", "", "certificate verify failed")])
    endpoint = _Endpoint(error=ResponseNeverReceived([Failure(tls)]))
    with pytest.raises(OAuthError) as e:
        await token_request(endpoint, "https://auth.test/token", {}, json_body=True)
    assert e.value.transient and e.value.status == 0
    assert "could not reach it" in e.value.message
    assert "certificate verify failed" in e.value.message


@pytest_twisted.ensureDeferred
async def test_an_oversized_answer_is_refused():
    response = BufferedResponse(200, b"x" * 100)
    with pytest.raises(OAuthError, match="larger than 10 bytes"):
        await read_limited(response, limit=10)


def test_body_transport_is_none_before_the_body_starts():
    from twisted.internet.protocol import Protocol

    assert body_transport(Protocol()) is None
