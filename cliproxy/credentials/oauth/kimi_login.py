# -*- test-case-name: tests.oauth.test_kimi_login -*-
"""`cliproxy login kimi`: Kimi Code's device login (RFC 8628), as CLIProxyAPI's `kimi.go`.

POST the client id to the device endpoint, show the verification address and user code,
poll the token endpoint (`grant_type=urn:ietf:params:oauth:grant-type:device_code`) every
`interval` seconds (at least 5) until the user approves, is refused, or the code expires;
then save `kimi-<milliseconds>.json` (`type: kimi`, tokens, `expired`, `device_id`).
Every request carries the `X-Msh-*` device headers Kimi's service reads.
"""

from __future__ import annotations

import os
import platform
import socket
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime

from cliproxy import __version__
from cliproxy.config.model import KimiEndpoints
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.device import (
    MIN_INTERVAL,
    DeviceGrant,
    DeviceLoginError,
    post_form,
    run_device_login,
)
from cliproxy.credentials.oauth.providers import KIMI
from cliproxy.credentials.store import format_time, write_auth_file

__all__ = ["KimiLoginError", "kimi_device_grant", "kimi_device_login"]

KimiLoginError = DeviceLoginError


def device_headers(device_id: str) -> dict[str, str]:
    return {
        "X-Msh-Platform": "CLIProxyAPI",
        "X-Msh-Version": __version__,
        "X-Msh-Device-Name": socket.gethostname() or "unknown",
        "X-Msh-Device-Model": f"{platform.system()} {platform.machine()}".strip(),
        "X-Msh-Device-Id": device_id,
    }


async def kimi_device_grant(
    http: HTTPRequester, endpoints: KimiEndpoints, auth_dir: str
) -> DeviceGrant:
    """Ask for a device code (the login's first step).

    Raises:
        KimiLoginError: the device endpoint failed.
    """
    device = uuid.uuid4().hex
    headers = device_headers(device)
    fields = {"client_id": KIMI.client_id}
    code = await post_form(http, endpoints.device_url, fields, headers)
    if not code.get("device_code"):
        raise KimiLoginError(f"no device code from {endpoints.device_url}: {code.get('error')}")
    return DeviceGrant(
        "Kimi Code",
        code,
        endpoints.token_url,
        fields,
        lambda answer, now: _save(answer, device, now, auth_dir),
        headers,
    )


async def kimi_device_login(
    http: HTTPRequester,
    clock: IReactorTime,
    endpoints: KimiEndpoints,
    auth_dir: str,
    out: Callable[[str], None],
    *,
    min_interval: float = MIN_INTERVAL,
) -> str:
    """Run the device login; the saved file's path.

    Raises:
        KimiLoginError: refused, expired, or an endpoint error.
    """
    grant = await kimi_device_grant(http, endpoints, auth_dir)
    return await run_device_login(grant, http, clock, out, min_interval)


def _save(answer: dict[str, Any], device: str, now: float, auth_dir: str) -> str:
    record: dict[str, Any] = {
        "type": "kimi",
        "access_token": str(answer["access_token"]),
        "refresh_token": str(answer.get("refresh_token") or ""),
        "token_type": str(answer.get("token_type") or "Bearer"),
        "scope": str(answer.get("scope") or ""),
        "timestamp": int(now * 1000),
        "device_id": device,
    }
    lifetime = answer.get("expires_in")
    if isinstance(lifetime, int | float) and lifetime > 0:
        record["expired"] = format_time(now + float(lifetime))
    path = os.path.join(os.path.expanduser(auth_dir), f"kimi-{int(now * 1000)}.json")
    write_auth_file(path, record)
    return path
