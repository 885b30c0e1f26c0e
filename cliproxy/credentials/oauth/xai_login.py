# -*- test-case-name: tests.credentials.test_xai -*-
"""`cliproxy login xai`: xAI's device login, as CLIProxyAPI's `internal/auth/xai`.

OIDC discovery at the issuer (`https://auth.x.ai/.well-known/openid-configuration`; both
endpoints it names must be https on x.ai unless `oauth-endpoints.xai.issuer-url` points
elsewhere), a device code for the Grok CLI's client and scopes, the verification address
shown, the token endpoint polled until approved; then `xai-<email>.json` is saved with
`type: xai`, `auth_kind: oauth`, the tokens, `expired`, `email`/`sub` from the id token,
`base_url` and the `token_endpoint` later refreshes use.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from cliproxy.config.model import XAI_BASE_URL, XAI_ISSUER_URL, XAIEndpoints
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.device import (
    MIN_INTERVAL,
    DeviceGrant,
    DeviceLoginError,
    post_form,
    run_device_login,
)
from cliproxy.credentials.oauth.providers import XAI
from cliproxy.credentials.oauth.records import jwt_claims
from cliproxy.credentials.oauth.refresh_rules import xai_endpoint_ok
from cliproxy.credentials.oauth.tokens import describe_network_error, read_limited
from cliproxy.credentials.store import format_time, write_auth_file

__all__ = ["discover", "xai_device_grant", "xai_device_login"]


async def discover(http: HTTPRequester, issuer: str) -> tuple[str, str]:
    """(device authorization endpoint, token endpoint) from the issuer's OIDC document.

    Raises:
        DeviceLoginError: not reached, not the document, or endpoints off x.ai.
    """
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = await http.request(
            "GET", url, headers={"Accept": "application/json"}, timeout_headers=30.0
        )
        data = await read_limited(response)
    except defer.CancelledError:
        raise
    except Exception as e:
        raise DeviceLoginError(f"could not reach {url} ({describe_network_error(e)})") from None
    try:
        doc = json.loads(data) if response.code == 200 else None
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise DeviceLoginError(f"{url} answered {response.code} without a discovery document")
    found = []
    for key in ("device_authorization_endpoint", "token_endpoint"):
        value = str(doc.get(key) or "").strip()
        if not value:
            raise DeviceLoginError(f"the xAI discovery document names no {key}")
        if issuer.rstrip("/") == XAI_ISSUER_URL and not xai_endpoint_ok(value):
            raise DeviceLoginError(f"the xAI discovery {key} {value!r} is not https on x.ai")
        found.append(value)
    return found[0], found[1]


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "-", part.strip()).strip("-")


async def xai_device_grant(
    http: HTTPRequester, endpoints: XAIEndpoints, auth_dir: str
) -> DeviceGrant:
    """Discover the endpoints and ask for a device code (the login's first step).

    Raises:
        DeviceLoginError: discovery or the device endpoint failed.
    """
    device_url, token_url = await discover(http, endpoints.issuer_url)
    token_url = endpoints.token_url or token_url
    fields = {"client_id": XAI.client_id}
    code = await post_form(http, device_url, {**fields, "scope": " ".join(XAI.scopes)})
    if not code.get("device_code"):
        raise DeviceLoginError(f"no device code from {device_url}: {code.get('error')}")
    return DeviceGrant(
        "xAI (Grok)",
        code,
        token_url,
        fields,
        lambda answer, now: _save(answer, token_url, now, auth_dir),
    )


async def xai_device_login(
    http: HTTPRequester,
    clock: IReactorTime,
    endpoints: XAIEndpoints,
    auth_dir: str,
    out: Callable[[str], None],
    *,
    min_interval: float = MIN_INTERVAL,
) -> str:
    """Run the device login; the saved file's path.

    Raises:
        DeviceLoginError: refused, expired, or an endpoint error.
    """
    grant = await xai_device_grant(http, endpoints, auth_dir)
    return await run_device_login(grant, http, clock, out, min_interval)


def _save(answer: dict[str, Any], token_url: str, now: float, auth_dir: str) -> str:
    id_token = str(answer.get("id_token") or "")
    claims = jwt_claims(id_token)
    email, sub = str(claims.get("email") or ""), str(claims.get("sub") or "")
    record: dict[str, Any] = {
        "type": "xai",
        "auth_kind": "oauth",
        "access_token": str(answer["access_token"]),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "id_token": id_token,
        "token_type": str(answer.get("token_type") or "Bearer"),
        "last_refresh": format_time(now),
        "base_url": XAI_BASE_URL,
        "token_endpoint": token_url,
    }
    lifetime = answer.get("expires_in")
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        record["expires_in"] = int(lifetime)
        record["expired"] = format_time(now + float(lifetime))
    if email:
        record["email"] = email
    if sub:
        record["sub"] = sub
    name = _safe(email) or _safe(sub) or str(int(now * 1000))
    path = os.path.join(os.path.expanduser(auth_dir), f"xai-{name}.json")
    write_auth_file(path, record)
    return path
