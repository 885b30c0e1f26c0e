# -*- test-case-name: tests.credentials.test_service_account -*-
"""Google service-account keys: an RS256 JWT assertion traded for an access token.

This is the JWT-bearer grant (RFC 7523) that Google's client libraries use for a service
account: sign `{iss, scope, aud, iat, exp}` with the key's RSA private key, POST it to the
key's `token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, and use the
`access_token` of the answer (valid about an hour) until shortly before it expires.
Only `cryptography` is needed; no Google SDK.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.tokens import OAuthError, token_request

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "JWT_BEARER_GRANT",
    "ServiceAccountError",
    "ServiceAccountKey",
    "ServiceAccountToken",
    "TokenUnavailable",
    "jwt_assertion",
    "parse_service_account",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: lifetime asked for in the assertion (Google's maximum)
ASSERTION_LIFETIME = 3600
#: a cached token is replaced this long before it expires
EXPIRY_MARGIN = 300.0
#: after a failed mint, requests fail fast for this long
FAILURE_BACKOFF = 30.0
#: seconds one token request may wait for response headers
REQUEST_TIMEOUT = 20.0


class ServiceAccountError(ValueError):
    """The service-account JSON is unusable (missing field, broken key)."""


class TokenUnavailable(Exception):
    """No access token now. `permanent`: the key itself was refused (re-import it)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _normalise_pem(text: str) -> bytes:
    # keys pasted through shells and YAML often arrive with literal "\n" or CRLF
    pem = text.replace("\\n", "\n").replace("\r\n", "\n").replace("\r", "\n").strip()
    return (pem + "\n").encode("utf-8")


@dataclass(frozen=True)
class ServiceAccountKey:
    """The parts of a service-account JSON that minting needs."""

    client_email: str
    project_id: str
    token_uri: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)


def _text(sa: dict[str, Any], name: str) -> str:
    value = sa.get(name)
    return value.strip() if isinstance(value, str) else ""


def parse_service_account(sa: Any) -> ServiceAccountKey:
    """Check a service-account object and load its RSA key.

    Raises:
        ServiceAccountError: names the missing or broken field (never its value).
    """
    if not isinstance(sa, dict):
        raise ServiceAccountError("service_account is not a JSON object")
    if sa.get("type") not in (None, "", "service_account"):
        raise ServiceAccountError(
            f"service_account.type is {sa.get('type')!r}, not service_account"
        )
    email = _text(sa, "client_email")
    if not email:
        raise ServiceAccountError("service_account.client_email is missing")
    pem = _text(sa, "private_key")
    if not pem:
        raise ServiceAccountError("service_account.private_key is missing")
    try:
        key = serialization.load_pem_private_key(_normalise_pem(pem), password=None)
    except (ValueError, TypeError) as e:
        reason = str(e).split("\n")[0] or type(e).__name__
        raise ServiceAccountError(f"service_account.private_key is not a PEM key ({reason})")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServiceAccountError("service_account.private_key is not an RSA key")
    return ServiceAccountKey(
        client_email=email,
        project_id=_text(sa, "project_id"),
        token_uri=_text(sa, "token_uri") or DEFAULT_TOKEN_URI,
        private_key_id=_text(sa, "private_key_id"),
        private_key=key,
    )


def jwt_assertion(
    key: ServiceAccountKey, now: float, *, audience: str = "", scope: str = CLOUD_PLATFORM_SCOPE
) -> str:
    """The signed RS256 JWT that asks `audience` (the token URI) for a token."""
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if key.private_key_id:
        header["kid"] = key.private_key_id
    issued = int(now)
    claims = {
        "iss": key.client_email,
        "scope": scope,
        "aud": audience or key.token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    signature = key.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64url(signature)}"


class ServiceAccountToken:
    """One service account's access token: minted on demand, cached, one mint at a time.

    Args:
        key: the parsed service account.
        clock: `IReactorTime` for expiry and back-off.
        name: the auth file name, for logs.
        token_url: where to send the assertion (default: the key's `token_uri`).
    """

    log = Logger()

    def __init__(
        self, key: ServiceAccountKey, clock: IReactorTime, *, name: str, token_url: str = ""
    ) -> None:
        self.key = key
        self.clock = clock
        self.name = name
        self.token_url = token_url or key.token_uri
        self._token = ""
        self._expires = 0.0
        self._not_before = 0.0
        self._inflight: defer.Deferred[str] | None = None
        self._waiters: list[defer.Deferred[str]] = []
        self.mints = 0
        self.last_error = ""

    @property
    def expiry(self) -> float | None:
        return self._expires if self._token else None

    def fresh(self) -> bool:
        return bool(self._token) and self._expires - EXPIRY_MARGIN > self.clock.seconds()

    def forget(self, stale: str) -> None:
        """The upstream refused `stale` (401): mint a new one next time."""
        if self._token == stale:
            self._token, self._expires = "", 0.0

    async def token(self, http: HTTPRequester, proxy_url: str | None = None) -> str:
        """A usable access token, minting one when none is cached or it nearly expired.

        Raises:
            TokenUnavailable: the token endpoint refused or could not be reached.
        """
        if self.fresh():
            return self._token
        now = self.clock.seconds()
        if now < self._not_before:
            raise TokenUnavailable(
                f"service account {self.name}: token minting paused "
                f"{self._not_before - now:.0f}s after: {self.last_error}"
            )
        # each caller waits on its own Deferred: one that leaves does not stop the mint
        waiter: defer.Deferred[str] = defer.Deferred(self._waiters.remove)
        self._waiters.append(waiter)
        if self._inflight is None:
            mint = defer.ensureDeferred(self._mint(http, proxy_url))
            self._inflight = mint
            mint.addBoth(self._settled)
        return await waiter

    def _settled(self, result: str | Failure) -> None:
        self._inflight = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    async def _mint(self, http: HTTPRequester, proxy_url: str | None) -> str:
        now = self.clock.seconds()
        fields = {
            "grant_type": JWT_BEARER_GRANT,
            "assertion": jwt_assertion(self.key, now, audience=self.key.token_uri),
        }
        try:
            answer = await token_request(
                http,
                self.token_url,
                fields,
                json_body=False,
                proxy_url=proxy_url,
                timeout=REQUEST_TIMEOUT,
                what=f"service-account token for {self.name}",
            )
        except OAuthError as e:
            self.last_error = e.message
            self._not_before = self.clock.seconds() + FAILURE_BACKOFF
            self.log.warn("{name}: {error}", name=self.name, error=e.message)
            raise TokenUnavailable(e.message, permanent=e.needs_login) from None
        lifetime = answer.get("expires_in")
        seconds = (
            float(lifetime) if isinstance(lifetime, int | float) else float(ASSERTION_LIFETIME)
        )
        self._token = str(answer["access_token"])
        self._expires = self.clock.seconds() + seconds
        self.mints += 1
        self.last_error = ""
        self.log.info(
            "{name}: service-account token minted; valid for {minutes:.0f} min",
            name=self.name,
            minutes=seconds / 60.0,
        )
        return self._token
