"""Helpers for OAuth tests: token files in CLIProxyAPI's format and configs pointing at fakes."""

from __future__ import annotations

import json
import os
from typing import Any

from cliproxy.credentials.store import format_time
from tests.fakes import unsigned_jwt
from tests.serving_kit import config_text

#: a fixed "now" for task.Clock-driven tests (2026-01-01T00:00:00Z)
T0 = 1767225600.0


def write_file(directory: Any, name: str, record: dict, mode: int = 0o600) -> str:
    """Write a token file as CLIProxyAPI (or a person) would; returns its path."""
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    os.chmod(path, mode)
    return path


def claude_file(access: str, refresh: str, expires: float, email="user@example.com") -> dict:
    return {
        "access_token": access,
        "email": email,
        "expired": format_time(expires),
        "id_token": "",
        "last_refresh": format_time(expires - 8 * 3600),
        "refresh_token": refresh,
        "type": "claude",
    }


def codex_file(
    access: str, refresh: str, expires: float, email="user@example.com", account="acct-fake-0001"
) -> dict:
    claims = {
        "email": email,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": account,
            "chatgpt_plan_type": "plus",
        },
    }
    return {
        "access_token": access,
        "account_id": account,
        "email": email,
        "expired": format_time(expires),
        "id_token": unsigned_jwt(claims),
        "last_refresh": format_time(expires - 10 * 86400),
        "refresh_token": refresh,
        "type": "codex",
    }


def gemini_file(
    access: str, refresh: str, expires: float, project="fake-project-123", email="user@example.com"
) -> dict:
    # Go's oauth2.Token marshalled with nanoseconds and a zone offset, as CLIProxyAPI writes it
    expiry = format_time(expires).replace("Z", ".123456789+00:00")
    return {
        "auto": False,
        "checked": True,
        "email": email,
        "project_id": project,
        "token": {
            "access_token": access,
            "client_id": "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
            "client_secret": "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",
            "expiry": expiry,
            "refresh_token": refresh,
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "token_type": "Bearer",
            "token_uri": "https://oauth2.googleapis.com/token",
            "universe_domain": "googleapis.com",
        },
        "type": "gemini",
    }


def endpoints_yaml(
    claude_oauth=None,
    claude_api=None,
    codex_oauth=None,
    codex_api=None,
    google=None,
    cloudcode=None,
) -> str:
    """An `oauth-endpoints:` section pointing every given provider at its fakes."""
    lines = ["oauth-endpoints:"]
    if claude_oauth or claude_api:
        lines.append("  claude:")
        if claude_oauth:
            lines.append(f"    authorize-url: {claude_oauth.url}/oauth/authorize")
            lines.append(f"    token-url: {claude_oauth.url}/v1/oauth/token")
        if claude_api:
            lines.append(f"    api-url: {claude_api.url}")
    if codex_oauth or codex_api:
        lines.append("  codex:")
        if codex_oauth:
            lines.append(f"    authorize-url: {codex_oauth.url}/oauth/authorize")
            lines.append(f"    token-url: {codex_oauth.url}/oauth/token")
        if codex_api:
            lines.append(f"    api-url: {codex_api.url}/backend-api/codex")
    if google or cloudcode:
        lines.append("  gemini:")
        if google:
            lines.append(f"    authorize-url: {google.url}/o/oauth2/authorize")  # the fake's route
            lines.append(f"    token-url: {google.url}/token")
            lines.append(f"    userinfo-url: {google.url}/oauth2/v1/userinfo")
        if cloudcode:
            lines.append(f"    code-assist-url: {cloudcode.url}")
            lines.append(f"    resource-manager-url: {cloudcode.url}")
            lines.append(f"    service-usage-url: {cloudcode.url}")
    return "\n".join(lines) + "\n"


def oauth_config(auth_dir: Any, *sections: str, **fakes: Any) -> str:
    """A proxy config with `auth-dir` and oauth-endpoints for the given fakes."""
    return config_text(f"auth-dir: {auth_dir}\n", endpoints_yaml(**fakes), *sections)
