# -*- test-case-name: tests.oauth.test_login -*-
"""Gemini CLI accounts: user info, Code Assist project discovery and onboarding (core.md §3.2).

Used by `cliproxy login gemini` and, for a file that names no project, by the Gemini CLI
executor before its first request.
"""

from __future__ import annotations

import json
import platform
import sys
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.tokens import (
    describe_network_error,
    parse_error_body,
    read_limited,
)

__all__ = [
    "CODE_ASSIST_METADATA",
    "GoogleError",
    "discover_project",
    "enable_service",
    "fetch_email",
    "gemini_cli_user_agent",
    "list_projects",
    "load_code_assist",
    "onboard_user",
]

GEMINI_CLI_VERSION = "0.34.0"
CODE_ASSIST_METADATA = {
    "ideType": "IDE_UNSPECIFIED",
    "platform": "PLATFORM_UNSPECIFIED",
    "pluginType": "GEMINI",
}
SERVICE = "cloudaicompanion.googleapis.com"
DEFAULT_TIER = "legacy-tier"
#: onboarding without a project: poll every 2 s for up to 30 s
DISCOVERY_POLL = (2.0, 30.0)
#: onboarding a chosen project: poll every 5 s (bounded)
ONBOARD_POLL = (5.0, 120.0)
TIMEOUT = 30.0


class GoogleError(Exception):
    """A Google API call that failed; the message says which and why (no tokens)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _os_name() -> str:
    if sys.platform.startswith("win"):
        return "win32"
    return {"darwin": "darwin"}.get(sys.platform, sys.platform.rstrip("0123456789") or "linux")


def _arch() -> str:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x64"
    if machine in ("i386", "i686", "x86"):
        return "x86"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    return machine or "x64"


def gemini_cli_user_agent(model: str = "unknown") -> str:
    """`GeminiCLI/<version>/<model> (<os>; <arch>; terminal)`, as Gemini CLI sends it."""
    return f"GeminiCLI/{GEMINI_CLI_VERSION}/{model} ({_os_name()}; {_arch()}; terminal)"


async def google_json(
    http: HTTPRequester,
    method: str,
    url: str,
    token: str,
    body: dict[str, Any] | None = None,
    *,
    proxy_url: str | None = None,
    what: str,
    ok_statuses: tuple[int, ...] = (),
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One authorised JSON call; (status, parsed body).

    Raises:
        GoogleError: not reached, or an error status not in `ok_statuses`.
    """
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": gemini_cli_user_agent(),
        **(headers or {}),
    }
    data = b""
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode("utf-8")
    try:
        response = await http.request(
            method, url, headers=headers, body=data, proxy_url=proxy_url, timeout_headers=TIMEOUT
        )
        raw = await read_limited(response)
    except defer.CancelledError:
        raise
    except Exception as e:
        raise GoogleError(f"{what}: could not reach {url} ({describe_network_error(e)})") from None
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if response.code >= 400 and response.code not in ok_statuses:
        message = ""
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            message = str(parsed["error"].get("message") or "")[:300]
        if not message:
            code, desc = parse_error_body(raw)
            message = desc or code or f"{len(raw)} bytes"
        raise GoogleError(f"{what} failed: HTTP {response.code} ({message})", response.code)
    if parsed is None:
        raise GoogleError(f"{what}: the answer from {url} is not JSON", response.code)
    return response.code, parsed


async def fetch_email(
    http: HTTPRequester, userinfo_url: str, token: str, proxy_url: str | None = None
) -> str:
    """The account's email from the userinfo endpoint."""
    sep = "&" if "?" in userinfo_url else "?"
    _, info = await google_json(
        http, "GET", f"{userinfo_url}{sep}alt=json", token, proxy_url=proxy_url, what="user info"
    )
    email = str(info.get("email") or "") if isinstance(info, dict) else ""
    if not email:
        raise GoogleError("user info: Google did not say which email this account has")
    return email


def _project_id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


async def load_code_assist(
    http: HTTPRequester, base: str, token: str, project: str = "", proxy_url: str | None = None
) -> tuple[str, str]:
    """(tier id, project) from `loadCodeAssist` (project "" when none is set up yet)."""
    body: dict[str, Any] = {"metadata": dict(CODE_ASSIST_METADATA)}
    if project:
        body["cloudaicompanionProject"] = project
        body["metadata"]["duetProject"] = project
    _, answer = await google_json(
        http,
        "POST",
        f"{base}/v1internal:loadCodeAssist",
        token,
        body,
        proxy_url=proxy_url,
        what="Code Assist setup (loadCodeAssist)",
    )
    answer = answer if isinstance(answer, dict) else {}
    tier = DEFAULT_TIER
    for item in answer.get("allowedTiers") or ():
        if isinstance(item, dict) and item.get("isDefault") and item.get("id"):
            tier = str(item["id"])
            break
    return tier, _project_id(answer.get("cloudaicompanionProject"))


async def onboard_user(
    http: HTTPRequester,
    base: str,
    token: str,
    tier: str,
    project: str,
    clock: IReactorTime,
    *,
    poll: tuple[float, float],
    proxy_url: str | None = None,
) -> str:
    """Run `onboardUser` until it is done; the project it settles on ("" if none)."""
    body: dict[str, Any] = {"tierId": tier, "metadata": dict(CODE_ASSIST_METADATA)}
    if project:
        body["cloudaicompanionProject"] = project
    every, limit = poll
    waited = 0.0
    while True:
        _, answer = await google_json(
            http,
            "POST",
            f"{base}/v1internal:onboardUser",
            token,
            body,
            proxy_url=proxy_url,
            what="Code Assist onboarding (onboardUser)",
        )
        answer = answer if isinstance(answer, dict) else {}
        if answer.get("done"):
            response = answer.get("response")
            found = (
                _project_id(response.get("cloudaicompanionProject"))
                if isinstance(response, dict)
                else ""
            )
            return found or project
        if waited >= limit:
            raise GoogleError(f"Code Assist onboarding did not finish within {limit:g}s")
        await task.deferLater(clock, every, lambda: None)
        waited += every


async def discover_project(
    http: HTTPRequester, base: str, token: str, clock: IReactorTime, proxy_url: str | None = None
) -> str:
    """The account's Code Assist project, onboarding a free one when none exists ("" if none)."""
    tier, project = await load_code_assist(http, base, token, proxy_url=proxy_url)
    if project:
        return project
    return await onboard_user(
        http, base, token, tier, "", clock, poll=DISCOVERY_POLL, proxy_url=proxy_url
    )


async def list_projects(
    http: HTTPRequester, base: str, token: str, proxy_url: str | None = None
) -> list[str]:
    """The ids of the user's GCP projects (Resource Manager)."""
    _, answer = await google_json(
        http, "GET", f"{base}/v1/projects", token, proxy_url=proxy_url, what="listing projects"
    )
    items = answer.get("projects") if isinstance(answer, dict) else None
    return [str(p["projectId"]) for p in items or () if isinstance(p, dict) and p.get("projectId")]


async def enable_service(
    http: HTTPRequester, base: str, token: str, project: str, proxy_url: str | None = None
) -> None:
    """Make sure the Gemini for Cloud (`cloudaicompanion`) API is on for `project`."""
    url = f"{base}/v1/projects/{quote(project, safe='')}/services/{SERVICE}"
    _, state = await google_json(
        http, "GET", url, token, proxy_url=proxy_url, what=f"checking {SERVICE} on {project}"
    )
    if isinstance(state, dict) and state.get("state") == "ENABLED":
        return
    status, answer = await google_json(
        http,
        "POST",
        f"{url}:enable",
        token,
        {},
        proxy_url=proxy_url,
        what=f"enabling {SERVICE} on {project}",
        ok_statuses=(400,),
    )
    if status == 400 and "already enabled" not in json.dumps(answer).lower():
        raise GoogleError(f"enabling {SERVICE} on {project} failed: HTTP 400", 400)
