# -*- test-case-name: tests.oauth.test_records -*-
"""Token answers into auth-file records, in CLIProxyAPI's fields (core.md §3.5).

A record is the JSON object of one token file. These functions never drop fields they
do not know (per-file options such as `prefix` or `priority` survive a refresh).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cliproxy.credentials.oauth.providers import ProviderSpec
from cliproxy.credentials.oauth.tokens import OAuthError
from cliproxy.credentials.store import EXPIRY_KEYS, format_time, parse_time

__all__ = [
    "access_token_of",
    "claude_record",
    "codex_identity",
    "codex_record",
    "expiry_of",
    "gemini_record",
    "jwt_claims",
    "refresh_token_of",
    "refreshed_record",
]

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"
#: when a token answer says nothing about lifetime
DEFAULT_EXPIRES_IN = 3600


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying the signature (as CLIProxyAPI does)."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def codex_identity(id_token: str) -> dict[str, str]:
    """email, account_id and plan_type from a Codex id_token ("" when absent)."""
    claims = jwt_claims(id_token)
    auth = claims.get(OPENAI_AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}
    return {
        "email": str(claims.get("email") or ""),
        "account_id": str(auth.get("chatgpt_account_id") or ""),
        "plan_type": str(auth.get("chatgpt_plan_type") or ""),
    }


def _expires_at(answer: dict[str, Any], now: float) -> float:
    try:
        lifetime = float(answer.get("expires_in") or DEFAULT_EXPIRES_IN)
    except (TypeError, ValueError):
        lifetime = DEFAULT_EXPIRES_IN
    return now + lifetime


def claude_record(answer: dict[str, Any], now: float) -> dict[str, Any]:
    """A `claude-<email>.json` record from a code exchange answer.

    Raises:
        OAuthError: the answer names no account email (the file could not be named).
    """
    account = answer.get("account")
    email = str(account.get("email_address") or "") if isinstance(account, dict) else ""
    if not email:
        raise OAuthError("the Claude token answer has no account email; cannot save the login")
    return {
        "type": "claude",
        "access_token": str(answer["access_token"]),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "id_token": "",
        "email": email,
        "expired": format_time(_expires_at(answer, now)),
        "last_refresh": format_time(now),
    }


def codex_record(answer: dict[str, Any], now: float) -> dict[str, Any]:
    """A `codex-<email>-<plan>.json` record from a code exchange answer.

    Raises:
        OAuthError: no id_token, or one without an email.
    """
    id_token = str(answer.get("id_token") or "")
    ident = codex_identity(id_token)
    if not ident["email"]:
        raise OAuthError("the Codex token answer has no id_token with an email; cannot save it")
    return {
        "type": "codex",
        "id_token": id_token,
        "access_token": str(answer["access_token"]),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "account_id": ident["account_id"],
        "email": ident["email"],
        "expired": format_time(_expires_at(answer, now)),
        "last_refresh": format_time(now),
    }


def gemini_record(
    answer: dict[str, Any],
    now: float,
    *,
    spec: ProviderSpec,
    token_url: str,
    email: str,
    project_id: str,
    auto: bool,
    checked: bool,
) -> dict[str, Any]:
    """A `gemini-<email>-<project>.json` record (the token in Google's oauth2 shape)."""
    token = {
        "access_token": str(answer["access_token"]),
        "token_type": str(answer.get("token_type") or "Bearer"),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "expiry": format_time(_expires_at(answer, now)),
        "token_uri": token_url,
        "client_id": spec.client_id,
        "client_secret": spec.client_secret,
        "scopes": list(spec.scopes),
        "universe_domain": "googleapis.com",
    }
    return {
        "type": "gemini",
        "email": email,
        "project_id": project_id,
        "auto": auto,
        "checked": checked,
        "token": token,
    }


# -- reading a record ----------------------------------------------------------------------


def _token_map(record: dict[str, Any]) -> dict[str, Any]:
    token = record.get("token")
    return token if isinstance(token, dict) else {}


def access_token_of(record: dict[str, Any]) -> str:
    """The access token (`token.access_token` first for Gemini files, then top level)."""
    return str(_token_map(record).get("access_token") or record.get("access_token") or "")


def refresh_token_of(record: dict[str, Any]) -> str:
    return str(_token_map(record).get("refresh_token") or record.get("refresh_token") or "")


def expiry_of(record: dict[str, Any]) -> float | None:
    """When the access token expires; the `token` map wins over top level (Gemini)."""
    for source in (_token_map(record), record):
        for key in EXPIRY_KEYS:
            found = parse_time(source.get(key))
            if found is not None:
                return found
    return None


# -- after a refresh -----------------------------------------------------------------------


def refreshed_record(
    spec: ProviderSpec, record: dict[str, Any], answer: dict[str, Any], now: float
) -> dict[str, Any]:
    """`record` with the refresh `answer` applied (a new dict; unknown fields kept)."""
    out = dict(record)
    access = str(answer["access_token"])
    refresh = str(answer.get("refresh_token") or "") or refresh_token_of(record)
    expires = format_time(_expires_at(answer, now))
    if spec.file_type == "gemini":
        token = dict(_token_map(record))
        token.update(
            access_token=access,
            refresh_token=refresh,
            expiry=expires,
            token_type=str(answer.get("token_type") or token.get("token_type") or "Bearer"),
        )
        out["token"] = token
        out.update(
            access_token=access,
            refresh_token=refresh,
            token_type=token["token_type"],
            expiry=expires,
        )
        out["type"] = "gemini"
        return out
    out.update(access_token=access, refresh_token=refresh, expired=expires)
    out["last_refresh"] = format_time(now)
    out["type"] = spec.file_type
    if spec.file_type in ("antigravity", "xai", "kimi"):
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
            out["expires_in"] = int(lifetime)
        out["timestamp"] = int(now * 1000)
    if spec.file_type == "xai":
        for key in ("id_token", "token_type"):
            if answer.get(key):
                out[key] = str(answer[key])
    if spec.file_type == "claude":
        account = answer.get("account")
        if isinstance(account, dict) and account.get("email_address"):
            out["email"] = str(account["email_address"])
    elif spec.file_type == "codex":
        id_token = str(answer.get("id_token") or "")
        if id_token:
            out["id_token"] = id_token
            ident = codex_identity(id_token)
            if ident["account_id"]:
                out["account_id"] = ident["account_id"]
            if ident["email"]:
                out["email"] = ident["email"]
    return out
