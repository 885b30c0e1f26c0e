"""Vertex service-account keys: parsing, the signed assertion, the token cache, auth-dir loading."""

from __future__ import annotations

import base64
import json

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from twisted.internet import defer, task

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.keyfiles import service_account_of, vertex_base_url
from cliproxy.credentials.service_account import (
    JWT_BEARER_GRANT,
    ServiceAccountError,
    ServiceAccountToken,
    TokenUnavailable,
    jwt_assertion,
    parse_service_account,
)
from tests.fakes.vertex import FakeGoogleToken, service_account_json
from tests.oauth.kit import T0, write_file


def _part(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.fixture(scope="module")
def sa_pair():
    return service_account_json()


def test_assertion_is_an_rs256_jwt_signed_by_the_key(sa_pair):
    sa, public = sa_pair
    key = parse_service_account(sa)
    jwt = jwt_assertion(key, T0)
    head, body, sig = jwt.split(".")
    assert _part(head) == {"alg": "RS256", "typ": "JWT", "kid": "kid-fake-0001"}
    claims = _part(body)
    assert claims["iss"] == sa["client_email"]
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600 and claims["iat"] == int(T0)
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    public.verify(raw, f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())


def test_a_key_pasted_with_escaped_newlines_still_loads(sa_pair):
    sa, _ = sa_pair
    escaped = dict(sa, private_key=sa["private_key"].replace("\n", "\\n"))
    assert parse_service_account(escaped).client_email == sa["client_email"]


@pytest.mark.parametrize(
    "change, field",
    [
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            "private_key",
        ),
        ({"private_key": ""}, "private_key"),
        ({"client_email": ""}, "client_email"),
        ({"type": "authorized_user"}, "type"),
    ],
)
def test_a_broken_service_account_names_the_field(sa_pair, change, field):
    sa, _ = sa_pair
    with pytest.raises(ServiceAccountError, match=field) as info:
        parse_service_account(dict(sa, **change))
    assert "AAAA" not in str(info.value)


def test_regional_and_global_hosts():
    assert vertex_base_url("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    assert vertex_base_url("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert vertex_base_url("global") == "https://aiplatform.googleapis.com"
    assert vertex_base_url("") == "https://us-central1-aiplatform.googleapis.com"


def vertex_file(sa, **extra):
    record = {
        "type": "vertex",
        "service_account": sa,
        "project_id": sa["project_id"],
        "email": sa["client_email"],
        "location": "us-central1",
    }
    record.update(extra)
    return record


def test_authdir_loads_a_vertex_file_and_skips_a_broken_one(tmp_path, sa_pair):
    sa, _ = sa_pair
    write_file(tmp_path, "vertex-fake-project.json", vertex_file(sa, prefix="team", priority=3))
    broken = dict(sa, private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    write_file(tmp_path, "vertex-broken.json", vertex_file(broken))
    authdir = AuthDir(lambda: str(tmp_path), task.Clock(), OAuthEndpoints)
    assert authdir.scan()
    creds = authdir.credentials()
    assert [c.id for c in creds] == ["vertex-fake-project.json"]
    cred = creds[0]
    assert (cred.provider, cred.kind, cred.prefix, cred.priority) == ("vertex", "oauth", "team", 3)
    assert cred.base_url == "https://us-central1-aiplatform.googleapis.com"
    assert cred.option("project_id") == "fake-project" and cred.option("location") == "us-central1"
    token = service_account_of(cred)
    assert token is not None
    # a rescan of unchanged files keeps the same token cache; removing the file drops it
    authdir.scan()
    assert service_account_of(authdir.credentials()[0]) is token
    (tmp_path / "vertex-fake-project.json").unlink()
    assert authdir.scan() and authdir.credentials() == []


@pytest_twisted.ensureDeferred
async def test_token_is_minted_once_for_concurrent_callers_and_cached(
    start_fake, http_pool, sa_pair
):
    from twisted.internet import reactor

    from cliproxy.upstream.http import UpstreamHTTP

    sa, public = sa_pair
    clock = task.Clock()
    clock.advance(T0)
    google = start_fake(FakeGoogleToken, now=clock.seconds)
    google.trust(sa["client_email"], public)
    http = UpstreamHTTP(reactor)
    try:
        token = ServiceAccountToken(
            parse_service_account(sa), clock, name="vertex-a.json", token_url=google.url + "/token"
        )
        first = defer.ensureDeferred(token.token(http))
        second = defer.ensureDeferred(token.token(http))
        assert await first == await second == "ya29.fake-0001"
        assert len(google.requests) == 1
        assert google.last.form["grant_type"] == JWT_BEARER_GRANT
        clock.advance(3400)  # within the 5-minute margin of expiry: a new one
        assert await token.token(http) == "ya29.fake-0002"
        assert await token.token(http) == "ya29.fake-0002"
        assert len(google.requests) == 2
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_an_untrusted_or_stale_assertion_is_refused_as_google_does(start_fake, sa_pair):
    from twisted.internet import reactor

    from cliproxy.upstream.http import UpstreamHTTP

    sa, _ = sa_pair
    other, other_public = service_account_json()
    clock = task.Clock()
    clock.advance(T0)
    google = start_fake(FakeGoogleToken, now=lambda: T0 + 7200)  # our clock is 2 h behind
    google.trust(sa["client_email"], other_public)  # not this key's public half
    http = UpstreamHTTP(reactor)
    try:
        token = ServiceAccountToken(
            parse_service_account(sa), clock, name="vertex-a.json", token_url=google.url + "/token"
        )
        with pytest.raises(TokenUnavailable, match="invalid_grant: Invalid JWT Signature") as info:
            await token.token(http)
        assert info.value.permanent
        with pytest.raises(TokenUnavailable, match="paused"):
            await token.token(http)  # no hammering meanwhile
        assert len(google.requests) == 1
        google.trust(sa["client_email"], parse_service_account(sa).private_key.public_key())
        clock.advance(31)
        with pytest.raises(TokenUnavailable, match="short-lived token"):
            await token.token(http)
    finally:
        await http.close()
