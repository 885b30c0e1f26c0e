# -*- test-case-name: tests.credentials.test_antigravity_login -*-
"""Antigravity accounts: identity, Cloud Code project and the token file (CLIProxyAPI's
`internal/auth/antigravity` and `sdk/auth/antigravity.go`).

After the Google sign-in (`cliproxy login antigravity`, the browser flow of login.py with
Antigravity's client and its registered redirect `http://localhost:51121/oauth-callback`),
the account's email comes from Google's userinfo and its project from Cloud Code's
`loadCodeAssist` (`{"metadata": {"ideType": "ANTIGRAVITY"}}`); an account without one is
onboarded with `onboardUser` (`tier_id` = the default allowed tier), polled until `done`.
The file is `antigravity-<email>.json`: `type`, `access_token`, `refresh_token`,
`expires_in`, `timestamp` (ms), `expired` (RFC 3339), `email`, `project_id`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from cliproxy.config.model import AntigravityEndpoints
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.google import GoogleError, google_json
from cliproxy.credentials.store import format_time

__all__ = [
    "GOOG_API_CLIENT",
    "USER_AGENT",
    "VERSION",
    "antigravity_record",
    "discover_project",
    "project_of",
]

#: the Antigravity client version sent (Cloud Code refuses newer models below 2.9.0)
VERSION = "2.9.1"
USER_AGENT = f"antigravity/hub/{VERSION} darwin/arm64"
GOOG_API_CLIENT = "gl-node/22.21.1"
#: onboarding: up to 5 polls, 2 s apart
ONBOARD_POLLS = 5
ONBOARD_EVERY = 2.0


def project_of(data: Any) -> str:
    """The project id in a loadCodeAssist/onboardUser answer ("" when none)."""
    if not isinstance(data, dict):
        return ""
    for key in ("cloudaicompanionProject", "projectId", "project"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _default_tier(answer: dict[str, Any]) -> str:
    for tier in answer.get("allowedTiers") or ():
        if isinstance(tier, dict) and tier.get("isDefault") is True:
            if isinstance(tier.get("id"), str) and tier["id"].strip():
                return str(tier["id"]).strip()
    current = answer.get("currentTier")
    if isinstance(current, dict) and isinstance(current.get("id"), str) and current["id"].strip():
        return str(current["id"]).strip()
    return "free-tier"


async def discover_project(
    http: HTTPRequester,
    endpoints: AntigravityEndpoints,
    token: str,
    clock: IReactorTime,
    proxy_url: str | None = None,
) -> str:
    """The account's Cloud Code project, onboarding it when it has none.

    Raises:
        GoogleError: a call failed, or onboarding ended without a project.
    """
    ua = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    _, answer = await google_json(
        http,
        "POST",
        f"{endpoints.code_assist_url}/v1internal:loadCodeAssist",
        token,
        {"metadata": {"ideType": "ANTIGRAVITY"}},
        proxy_url=proxy_url,
        what="Antigravity project lookup (loadCodeAssist)",
        headers=ua,
    )
    answer = answer if isinstance(answer, dict) else {}
    project = project_of(answer)
    if project:
        return project
    body = {
        "tier_id": _default_tier(answer),
        "metadata": {"ide_type": "ANTIGRAVITY", "ide_version": VERSION, "ide_name": "antigravity"},
    }
    for attempt in range(ONBOARD_POLLS):
        _, done = await google_json(
            http,
            "POST",
            f"{endpoints.api_url}/v1internal:onboardUser",
            token,
            body,
            proxy_url=proxy_url,
            what="Antigravity onboarding (onboardUser)",
            headers={**ua, "X-Goog-Api-Client": GOOG_API_CLIENT},
        )
        if isinstance(done, dict) and done.get("done") is True:
            project = project_of(done.get("response"))
            if not project:
                raise GoogleError("Antigravity onboarding finished without a project id")
            return project
        if attempt + 1 < ONBOARD_POLLS:
            await task.deferLater(clock, ONBOARD_EVERY, lambda: None)
    raise GoogleError(f"Antigravity onboarding did not finish after {ONBOARD_POLLS} polls")


def antigravity_record(
    answer: dict[str, Any], now: float, email: str, project: str
) -> dict[str, Any]:
    """The `antigravity-<email>.json` record from a code exchange answer."""
    try:
        lifetime = int(answer.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600
    return {
        "type": "antigravity",
        "access_token": str(answer["access_token"]),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "expires_in": lifetime,
        "timestamp": int(now * 1000),
        "expired": format_time(now + lifetime),
        "email": email,
        "project_id": project,
    }
