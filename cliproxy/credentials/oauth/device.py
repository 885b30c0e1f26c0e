# -*- test-case-name: tests.oauth.test_kimi_login -*-
"""The device authorization grant (RFC 8628) as Kimi's and xAI's logins use it.

`post_form` sends one form and returns the JSON object answered (an RFC 6749 error
object too: the caller reads `error`); `poll_token` polls the token endpoint every
`interval` seconds until the user approves, is refused, or the code expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.tokens import describe_network_error, read_limited

__all__ = [
    "DEVICE_GRANT",
    "DeviceGrant",
    "DeviceLoginError",
    "poll_token",
    "post_form",
    "run_device_login",
]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MIN_INTERVAL = 5.0
MAX_WAIT = 15 * 60.0
_ERRORS = {"expired_token": "the device code expired", "access_denied": "access denied"}


class DeviceLoginError(Exception):
    """The login did not finish (refused, expired, an endpoint error); one line for a person."""


async def post_form(
    http: HTTPRequester, url: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST `fields` as a form; the JSON object answered.

    Raises:
        DeviceLoginError: not reached, not JSON, or an error status without an `error`.
    """
    sent = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        **(headers or {}),
    }
    try:
        response = await http.request(
            "POST", url, headers=sent, body=urlencode(fields).encode("ascii"), timeout_headers=30.0
        )
        data = await read_limited(response)
    except defer.CancelledError:
        raise
    except Exception as e:
        raise DeviceLoginError(f"could not reach {url} ({describe_network_error(e)})") from None
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DeviceLoginError(f"{url} answered {response.code} without JSON") from None
    if not isinstance(answer, dict):
        raise DeviceLoginError(f"{url} answered {response.code} without a JSON object")
    if response.code >= 400 and not answer.get("error"):
        raise DeviceLoginError(f"{url} refused the request: HTTP {response.code}")
    return answer


async def poll_token(
    http: HTTPRequester,
    clock: IReactorTime,
    token_url: str,
    fields: dict[str, str],
    code: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    min_interval: float = MIN_INTERVAL,
) -> dict[str, Any]:
    """Poll until approved; the token answer (with an access token).

    Raises:
        DeviceLoginError: refused, expired, or an endpoint error.
    """
    interval = max(float(code.get("interval") or 0), min_interval)
    deadline = clock.seconds() + min(float(code.get("expires_in") or MAX_WAIT), MAX_WAIT)
    fields = {**fields, "device_code": str(code["device_code"]), "grant_type": DEVICE_GRANT}
    while True:
        await task.deferLater(clock, interval, lambda: None)
        if clock.seconds() > deadline:
            raise DeviceLoginError("the device code expired before the sign-in was approved")
        answer = await post_form(http, token_url, fields, headers)
        error = str(answer.get("error") or "")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += MIN_INTERVAL
            continue
        if error:
            raise DeviceLoginError(
                _ERRORS.get(error, f"{error}: {answer.get('error_description', '')}")
            )
        if not answer.get("access_token"):
            raise DeviceLoginError(f"{token_url} answered without an access token")
        return answer


def verification_lines(code: dict[str, Any], title: str) -> list[str]:
    """What to tell the user: where to approve, and the code to type there."""
    address = code.get("verification_uri_complete") or code.get("verification_uri") or ""
    lines = [f"To sign in to {title}, open:\n{address}"]
    if code.get("user_code"):
        lines.append(f"User code: {code['user_code']}")
    lines.append("Waiting for authorization...")
    return lines


@dataclass
class DeviceGrant:
    """A device code handed out, and how to finish its login.

    Attributes:
        code: the device authorization answer (`device_code`, `user_code`, ...).
        token_url: where to poll.
        fields: the poll's form fields besides the device code and grant type.
        headers: extra headers of every poll.
        save: writes the token file from the token answer at a time; its path.
    """

    title: str
    code: dict[str, Any]
    token_url: str
    fields: dict[str, str]
    save: Callable[[dict[str, Any], float], str]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where the user approves."""
        return str(
            self.code.get("verification_uri_complete") or self.code.get("verification_uri") or ""
        )

    async def finish(
        self, http: HTTPRequester, clock: IReactorTime, min_interval: float = MIN_INTERVAL
    ) -> str:
        """Poll until approved and save; the saved file's path.

        Raises:
            DeviceLoginError: refused, expired, or an endpoint error.
        """
        answer = await poll_token(
            http,
            clock,
            self.token_url,
            self.fields,
            self.code,
            headers=self.headers,
            min_interval=min_interval,
        )
        return self.save(answer, clock.seconds())


async def run_device_login(
    grant: DeviceGrant,
    http: HTTPRequester,
    clock: IReactorTime,
    out: Callable[[str], None],
    min_interval: float = MIN_INTERVAL,
) -> str:
    """Tell the user where to approve, then finish the login; the saved file's path."""
    for line in verification_lines(grant.code, grant.title):
        out(line)
    return await grant.finish(http, clock, min_interval)
