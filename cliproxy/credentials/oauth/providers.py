# -*- test-case-name: tests.oauth.test_login_units -*-
"""What differs between the three logins (core.md §3.1 table, §2.2, §2.5, §2.6).

URLs come from the live config's `oauth-endpoints` (real URLs by default), so tests and
unusual networks can point any of them elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from cliproxy.config.model import (
    AntigravityEndpoints,
    ClaudeEndpoints,
    CodexEndpoints,
    GeminiEndpoints,
    KimiEndpoints,
    OAuthEndpoints,
    XAIEndpoints,
)

#: one provider's part of `oauth-endpoints`
ProviderEndpoints = (
    ClaudeEndpoints
    | CodexEndpoints
    | GeminiEndpoints
    | KimiEndpoints
    | AntigravityEndpoints
    | XAIEndpoints
)

__all__ = [
    "ANTIGRAVITY",
    "CLAUDE",
    "CODEX",
    "GEMINI",
    "KIMI",
    "PROVIDERS",
    "XAI",
    "ProviderSpec",
    "spec_for",
]

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """The fixed facts of one OAuth provider.

    Attributes:
        name: what `cliproxy login <name>` takes and `oauth-endpoints.<name>` holds.
        file_type: the auth-file `type`.
        routing: the routing provider key of its credentials.
        refresh_lead: refresh this long before expiry in the background (None: only
            lazily, when a request finds the token expired).
        margin: a request refreshes first when the token expires within this many seconds.
        json_token_body: the token endpoint takes JSON (Claude) rather than a form.
        rotates: refresh answers carry a new refresh token.
    """

    name: str
    title: str
    file_type: str
    routing: str
    client_id: str
    scopes: tuple[str, ...]
    rotates: bool
    #: public installed-app clients (Google's) have a secret that is not secret
    client_secret: str = ""
    #: the browser login's loopback callback (0 and "": a device login, no callback)
    callback_port: int = 0
    callback_path: str = ""
    extra_auth_params: tuple[tuple[str, str], ...] = ()
    refresh_lead: float | None = 5 * 60.0
    margin: float = 60.0
    json_token_body: bool = False
    refresh_scope: str = ""

    def endpoints(self, all_endpoints: OAuthEndpoints) -> ProviderEndpoints:
        by_name: dict[str, ProviderEndpoints] = {
            "claude": all_endpoints.claude,
            "codex": all_endpoints.codex,
            "gemini": all_endpoints.gemini,
            "kimi": all_endpoints.kimi,
            "antigravity": all_endpoints.antigravity,
            "xai": all_endpoints.xai,
        }
        return by_name[self.name]

    def redirect_uri(self, port: int | None = None) -> str:
        return f"http://localhost:{port or self.callback_port}{self.callback_path}"

    def authorize_url(
        self,
        all_endpoints: OAuthEndpoints,
        *,
        redirect_uri: str,
        state: str,
        challenge: str,
    ) -> str:
        """The URL the user opens to consent."""
        params: list[tuple[str, str]] = []
        if self.name == "claude":
            params.append(("code", "true"))
        params += [
            ("client_id", self.client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", " ".join(self.scopes)),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", state),
        ]
        params += [p for p in self.extra_auth_params if p[0] not in dict(params)]
        ep = self.endpoints(all_endpoints)
        # Kimi's and xAI's logins are device flows: no browser redirect
        if isinstance(ep, KimiEndpoints):
            base = ep.device_url
        elif isinstance(ep, XAIEndpoints):
            base = ep.issuer_url
        else:
            base = ep.authorize_url
        sep = "&" if "?" in base else "?"
        return base + sep + urlencode(params)

    def exchange_fields(
        self, *, code: str, state: str, redirect_uri: str, verifier: str
    ) -> dict[str, str]:
        """The token request body for an authorization code."""
        fields = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        if self.client_secret:
            fields["client_secret"] = self.client_secret
        if self.name == "claude":
            fields["state"] = state
        return fields

    def refresh_fields(
        self, refresh_token: str, client_id: str = "", secret: str = ""
    ) -> dict[str, str]:
        """The token request body for a refresh (a Gemini file may carry its own client)."""
        fields = {
            "client_id": client_id or self.client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        if self.client_secret or secret:
            fields["client_secret"] = secret or self.client_secret
        if self.refresh_scope:
            fields["scope"] = self.refresh_scope
        return fields


CLAUDE = ProviderSpec(
    name="claude",
    title="Claude",
    file_type="claude",
    routing="claude",
    client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    scopes=(
        "user:profile",
        "user:inference",
        "user:sessions:claude_code",
        "user:mcp_servers",
        "user:file_upload",
    ),
    callback_port=54545,
    callback_path="/callback",
    refresh_lead=4 * HOUR,
    json_token_body=True,
    rotates=True,
)

CODEX = ProviderSpec(
    name="codex",
    title="Codex (ChatGPT)",
    file_type="codex",
    routing="codex",
    client_id="app_EMoamEEZ73f0CkXaXp7hrann",
    scopes=("openid", "email", "profile", "offline_access"),
    callback_port=1455,
    callback_path="/auth/callback",
    extra_auth_params=(
        ("prompt", "login"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
    ),
    refresh_lead=5 * DAY,
    rotates=True,
    refresh_scope="openid profile email",
)

GEMINI = ProviderSpec(
    name="gemini",
    title="Google (Gemini CLI)",
    file_type="gemini",
    routing="gemini-cli",
    # Gemini CLI's public installed-app client; Google documents such secrets as not secret.
    client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
    client_secret="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",
    scopes=(
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    ),
    callback_port=8085,
    callback_path="/oauth2callback",
    extra_auth_params=(("access_type", "offline"), ("prompt", "consent")),
    refresh_lead=None,
    margin=10.0,
    rotates=False,
)

# Kimi Code (Moonshot) accounts: their files load and refresh here; the device login is
# `cliproxy login kimi` (credentials/oauth/kimi_login.py), not the browser flow above.
KIMI = ProviderSpec(
    name="kimi",
    title="Kimi Code",
    file_type="kimi",
    routing="kimi",
    client_id="17e5f671-d194-4dfb-9706-5516cb48c098",
    scopes=(),
    rotates=True,
)

# Antigravity (Google's agent IDE) accounts: a Google login with Antigravity's own client,
# serving Cloud Code's v1internal API (CLIProxyAPI's internal/auth/antigravity).
ANTIGRAVITY = ProviderSpec(
    name="antigravity",
    title="Antigravity (Google)",
    file_type="antigravity",
    routing="antigravity",
    # Antigravity's public installed-app client; Google documents such secrets as not secret.
    client_id="1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
    client_secret="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",
    scopes=(
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
        "https://www.googleapis.com/auth/cclog",
        "https://www.googleapis.com/auth/experimentsandconfigs",
    ),
    callback_port=51121,
    callback_path="/oauth-callback",
    extra_auth_params=(("access_type", "offline"), ("prompt", "consent")),
    rotates=False,
)

# xAI (Grok) accounts: a device login (`cliproxy login xai`, credentials/oauth/xai_login.py)
# with the Grok CLI's public client; refreshes go to the file's `token_endpoint`.
XAI = ProviderSpec(
    name="xai",
    title="xAI (Grok)",
    file_type="xai",
    routing="xai",
    client_id="b1a00492-073a-47ea-816f-4c329264a828",
    scopes=("openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"),
    rotates=True,
)

PROVIDERS = {p.name: p for p in (CLAUDE, CODEX, GEMINI, ANTIGRAVITY)}
_BY_FILE_TYPE = {p.file_type: p for p in (*PROVIDERS.values(), KIMI, XAI)}


def spec_for(name_or_type: str) -> ProviderSpec:
    """The spec for a login name or auth-file type (`gemini-cli` also means Gemini).

    Raises:
        KeyError: not an OAuth provider we log in to.
    """
    key = name_or_type.strip().lower()
    if key in ("gemini-cli", "google"):
        key = "gemini"
    spec = PROVIDERS.get(key) or _BY_FILE_TYPE.get(key)
    if spec is None:
        raise KeyError(name_or_type)
    return spec
