# -*- test-case-name: tests.oauth.test_kimi_login -*-
"""`cliproxy login kimi`: Kimi Code's device login (RFC 8628), as CLIProxyAPI's `kimi.go`.

POST the client id to the device endpoint, show the verification address and user code,
poll the token endpoint (`grant_type=urn:ietf:params:oauth:grant-type:device_code`) every
`interval` seconds (at least 5) until the user approves, is refused, or the code expires;
then save `kimi-<milliseconds>.json` (`type: kimi`, tokens, `expired`, `device_id`).
Every request carries the `X-Msh-*` device headers Kimi's service reads.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from cliproxy import __version__
from cliproxy.config.model import KimiEndpoints
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.providers import KIMI
from cliproxy.credentials.oauth.tokens import describe_network_error, read_limited
from cliproxy.credentials.store import format_time, write_auth_file

__all__ = ["KimiLoginError", "kimi_device_login"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MIN_INTERVAL = 5.0
MAX_WAIT = 15 * 60.0
_PENDING = ("authorization_pending", "slow_down")


class KimiLoginError(Exception):
    """The login did not finish (refused, expired, an endpoint error); one line for a person."""


def device_headers(device_id: str) -> dict[str, str]:
    return {
        "X-Msh-Platform": "CLIProxyAPI",
        "X-Msh-Version": __version__,
        "X-Msh-Device-Name": socket.gethostname() or "unknown",
        "X-Msh-Device-Model": f"{platform.system()} {platform.machine()}".strip(),
        "X-Msh-Device-Id": device_id,
    }


async def _post(http: HTTPRequester, url: str, fields: dict[str, str], device: str) -> Any:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        **device_headers(device),
    }
    try:
        response = await http.request(
            "POST",
            url,
            headers=headers,
            body=urlencode(fields).encode("ascii"),
            timeout_headers=30.0,
        )
        data = await read_limited(response)
    except defer.CancelledError:
        raise
    except Exception as e:
        raise KimiLoginError(f"could not reach {url} ({describe_network_error(e)})") from None
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KimiLoginError(f"{url} answered {response.code} without JSON") from None
    if not isinstance(answer, dict):
        raise KimiLoginError(f"{url} answered {response.code} without a JSON object")
    if response.code >= 400 and not answer.get("error"):
        raise KimiLoginError(f"{url} refused the request: HTTP {response.code}")
    return answer


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
    device = uuid.uuid4().hex
    code = await _post(http, endpoints.device_url, {"client_id": KIMI.client_id}, device)
    if not code.get("device_code"):
        raise KimiLoginError(f"no device code from {endpoints.device_url}: {code.get('error')}")
    address = code.get("verification_uri_complete") or code.get("verification_uri") or ""
    out(f"To sign in to Kimi Code, open:\n{address}")
    if code.get("user_code"):
        out(f"User code: {code['user_code']}")
    out("Waiting for authorization...")
    interval = max(float(code.get("interval") or 0), min_interval)
    deadline = clock.seconds() + min(float(code.get("expires_in") or MAX_WAIT), MAX_WAIT)
    fields = {"client_id": KIMI.client_id, "device_code": code["device_code"]}
    fields["grant_type"] = DEVICE_GRANT
    while True:
        await task.deferLater(clock, interval, lambda: None)
        if clock.seconds() > deadline:
            raise KimiLoginError("the device code expired before the sign-in was approved")
        answer = await _post(http, endpoints.token_url, fields, device)
        error = str(answer.get("error") or "")
        if error in _PENDING:
            continue
        if error:
            text = {"expired_token": "the device code expired", "access_denied": "access denied"}
            raise KimiLoginError(text.get(error, f"{error}: {answer.get('error_description', '')}"))
        if not answer.get("access_token"):
            raise KimiLoginError(f"{endpoints.token_url} answered without an access token")
        return _save(answer, device, clock.seconds(), auth_dir)


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
