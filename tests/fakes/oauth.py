"""OAuth authorization servers (Google, OpenAI/Codex, Claude): `FakeOAuth` (core.md §3).

Routes:
* `GET .../authorize`: registers a fresh code for the given `code_challenge`, `client_id`
  and `redirect_uri`, and redirects (302) to `redirect_uri?code=...&state=...`;
* `POST .../token` (JSON or form body, both accepted and recorded as sent):
  `grant_type=authorization_code` (code must be known and unused, PKCE S256 verifier must
  match, `redirect_uri` must match) and `grant_type=refresh_token` (token must be known;
  rotated on use unless flavor "google"); errors in RFC 6749 shape (`invalid_grant`,
  `invalid_client`, `unsupported_grant_type`), or Codex's `refresh_token_reused`;
* `GET .../userinfo` (Google): the user for a Bearer access token this fake issued;
* Codex device flow: `POST /api/accounts/deviceauth/usercode` and `.../deviceauth/token`.

The token answer depends on `flavor`: "claude" adds `organization` and `account`,
"codex" adds an `id_token` JWT with the ChatGPT claims, "google" adds `id_token` and
`scope` and does not rotate refresh tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply
from tests.fakes.server import FakeUpstream, bearer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge of a PKCE verifier."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def unsigned_jwt(claims: dict) -> str:
    """A JWT whose claims parse but whose signature is a placeholder (clients don't verify)."""
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64url(b'fake-signature')}"


def oauth_error(error: str, description: str | None = None) -> dict:
    out = {"error": error}
    if description:
        out["error_description"] = description
    return out


def oauth_error_reply(status: int, error: str, description: str | None = None, retry_after=None):
    """An RFC 6749 error answer, e.g. `oauth_error_reply(400, "invalid_grant")`."""
    return Reply(status, json=oauth_error(error, description), retry_after=retry_after)


@dataclass
class CodeGrant:
    """An authorization code the fake will accept once."""

    client_id: str | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None


class FakeOAuth(FakeUpstream):
    """A fake OAuth server.

    Args:
        flavor: "claude", "codex", "google" or "generic" (shapes the token answer).

    Attributes:
        client_id / client_secret: when set, token requests must carry them.
        email, account_id, plan_type, organization: identity in token answers.
        expires_in: lifetime of issued access tokens.
        rotate_refresh: issue a new refresh token on every refresh (old one becomes used).
        codes: code -> `CodeGrant`; refresh_tokens: valid refresh tokens;
        access_tokens: issued access tokens; used_refresh_tokens: spent ones.
        device_pending: how many device-token polls answer "pending" before success.
    """

    name = "fake-oauth"

    def __init__(self, flavor: str = "generic", keys=None, clock=None, reactor=None) -> None:
        self.flavor = flavor
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.email = "user@example.com"
        self.account_id = "acct-fake-0001"
        self.plan_type = "plus"
        self.organization = {"uuid": "org-fake-0001", "name": "Fake Org"}
        self.expires_in = 3600
        self.rotate_refresh = flavor != "google"
        self.codes: dict[str, CodeGrant] = {}
        self.refresh_tokens: set[str] = set()
        self.used_refresh_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.device_pending = 1
        self._serial = 0
        super().__init__(keys=keys, clock=clock, reactor=reactor)

    def install_builtins(self) -> None:
        self.builtin("POST", r"/api/accounts/deviceauth/usercode", self._device_code)
        self.builtin("POST", r"/api/accounts/deviceauth/token", self._device_token)
        self.builtin("GET", r".*/authorize", self._authorize)
        self.builtin("GET", r"(?:/oauth2/v[123])?/userinfo", self._userinfo)
        self.builtin("POST", r".*/token", self._token)

    def credential(self, rec: RecordedRequest) -> str | None:
        return bearer(rec)

    def accepts(self, rec: RecordedRequest) -> bool:
        return True  # OAuth endpoints authenticate with body parameters, checked per grant

    def not_found(self, rec: RecordedRequest) -> Reply:
        return oauth_error_reply(404, "not_found", f"{rec.method} {rec.path}")

    # -- state helpers -----------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-fake-{self._serial:04d}"

    def issue_code(
        self,
        code: str | None = None,
        verifier: str | None = None,
        challenge: str | None = None,
        client_id: str | None = None,
        redirect_uri: str | None = None,
    ) -> str:
        """Register an authorization code (PKCE-bound when a verifier or challenge is given)."""
        code = code or self._next("code")
        if verifier is not None:
            challenge = pkce_challenge(verifier)
        self.codes[code] = CodeGrant(client_id, redirect_uri, challenge)
        return code

    def add_refresh_token(self, token: str) -> None:
        self.refresh_tokens.add(token)

    def _tokens(self, rotate_from: str | None = None) -> dict:
        access = self._next("at")
        self.access_tokens.add(access)
        out = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        if rotate_from is None or self.rotate_refresh:
            refresh = self._next("rt")
            self.refresh_tokens.add(refresh)
            out["refresh_token"] = refresh
            if rotate_from is not None:
                self.refresh_tokens.discard(rotate_from)
                self.used_refresh_tokens.add(rotate_from)
        if self.flavor == "claude":
            out["organization"] = dict(self.organization)
            out["account"] = {"uuid": "acct-uuid-fake", "email_address": self.email}
        if self.flavor in ("codex", "google", "generic"):
            out["id_token"] = unsigned_jwt(self._claims())
        if self.flavor in ("google", "generic"):
            out["scope"] = "openid email profile"
        return out

    def _claims(self) -> dict:
        return {
            "email": self.email,
            "email_verified": True,
            "sub": "user-fake-0001",
            "https://api.openai.com/auth": {
                "chatgpt_account_id": self.account_id,
                "chatgpt_plan_type": self.plan_type,
                "organizations": [{"id": self.organization["uuid"], "is_default": True}],
            },
        }

    # -- routes --------------------------------------------------------------------

    def _authorize(self, rec: RecordedRequest, m) -> Reply:
        redirect = rec.arg("redirect_uri")
        if not redirect:
            return oauth_error_reply(400, "invalid_request", "redirect_uri is required")
        code = self.issue_code(
            challenge=rec.arg("code_challenge"),
            client_id=rec.arg("client_id"),
            redirect_uri=redirect,
        )
        query = {"code": code}
        if rec.arg("state") is not None:
            query["state"] = rec.arg("state")
        sep = "&" if "?" in redirect else "?"
        return Reply(302, headers={"Location": redirect + sep + urlencode(query)})

    def _client_ok(self, params: dict) -> bool:
        if self.client_id is not None and params.get("client_id") != self.client_id:
            return False
        return self.client_secret is None or params.get("client_secret") == self.client_secret

    def _token(self, rec: RecordedRequest, m) -> Reply:
        params = rec.params
        if not self._client_ok(params):
            return oauth_error_reply(401, "invalid_client", "unknown client or bad secret")
        grant = params.get("grant_type")
        if grant == "authorization_code":
            return self._exchange(params)
        if grant == "refresh_token":
            return self._refresh(params)
        return oauth_error_reply(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _exchange(self, params: dict) -> Reply:
        code = str(params.get("code") or "")
        grant = self.codes.pop(code, None)
        if grant is None:
            return oauth_error_reply(400, "invalid_grant", "Invalid authorization code")
        if grant.redirect_uri and params.get("redirect_uri") != grant.redirect_uri:
            return oauth_error_reply(400, "invalid_grant", "redirect_uri mismatch")
        if grant.code_challenge:
            verifier = str(params.get("code_verifier") or "")
            if not verifier or pkce_challenge(verifier) != grant.code_challenge:
                return oauth_error_reply(400, "invalid_grant", "code_verifier mismatch")
        return Reply(json=self._tokens())

    def _refresh(self, params: dict) -> Reply:
        token = str(params.get("refresh_token") or "")
        if token in self.used_refresh_tokens and self.flavor == "codex":
            return Reply(
                401,
                json={
                    "error": {
                        "message": "Your refresh token has already been used to generate a "
                        "new access token. Please try signing in again.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "refresh_token_reused",
                    }
                },
            )
        if token not in self.refresh_tokens:
            return oauth_error_reply(400, "invalid_grant", "Invalid refresh token")
        return Reply(json=self._tokens(rotate_from=token))

    def _userinfo(self, rec: RecordedRequest, m) -> Reply:
        if rec.key not in self.access_tokens:
            return Reply(
                401,
                json={
                    "error": {
                        "code": 401,
                        "message": "Invalid Credentials",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        return Reply(
            json={
                "id": "1234567890",
                "email": self.email,
                "verified_email": True,
                "name": "Fake User",
            }
        )

    def _device_code(self, rec: RecordedRequest, m) -> Reply:
        return Reply(
            json={"device_auth_id": "dev-fake-0001", "user_code": "FAKE-1234", "interval": "5"}
        )

    def _device_token(self, rec: RecordedRequest, m) -> Reply:
        if self.device_pending > 0:
            self.device_pending -= 1
            return Reply(
                403,
                json={
                    "error": {
                        "message": "authorization pending",
                        "code": "deviceauth_authorization_pending",
                    }
                },
            )
        verifier = b64url(hashlib.sha256(b"fake-device-verifier").digest() * 3)
        code = self.issue_code(
            verifier=verifier, redirect_uri="https://auth.openai.com/deviceauth/callback"
        )
        return Reply(
            json={
                "authorization_code": code,
                "code_verifier": verifier,
                "code_challenge": pkce_challenge(verifier),
            }
        )
