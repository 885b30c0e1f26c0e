# -*- test-case-name: tests.credentials.test_pool -*-
"""Why no credential serves a request, in words a person can act on: the errors the pool
and the registry raise, and the hints they carry."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string (`1m30s`, `2h0m0s`, `45s`), as CLIProxyAPI reports."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


_ADD_HINTS = {
    "claude": "add a claude-api-key entry to config.yaml or run `cliproxy login claude`",
    "codex": (
        "add a codex-api-key entry (with base-url) to config.yaml or run `cliproxy login codex`"
    ),
    "gemini": "add a gemini-api-key entry to config.yaml or run `cliproxy login gemini`",
    "gemini-cli": "run `cliproxy login gemini`",
    "vertex": "add a vertex-api-key entry to config.yaml",
    "aistudio": "connect an AI Studio relay to /v1/ws",
}


def add_credential_hint(providers: Iterable[str]) -> str:
    """What a person does to get a credential for one of `providers`."""
    hints: list[str] = []
    for provider in providers:
        hint = _ADD_HINTS.get(
            provider,
            f"add an api-key-entries item to the openai-compatibility provider "
            f"'{provider}' in config.yaml",
        )
        if hint not in hints:
            hints.append(hint)
    if not hints:
        return "add a provider key to config.yaml or run `cliproxy login <provider>`"
    return "; or ".join(hints[:3])


class SelectionError(Exception):
    """A request no credential will serve; `status`, `code` and `message` say how to answer.

    The registry's `UnknownModel` and the pool's `NoCredential` and `AllCoolingDown`
    derive from it, so the router can catch the three in one place.
    """

    status = 500
    code = "internal_error"
    message = ""


class NoCredential(SelectionError):
    """No enabled credential can serve the model: HTTP 503 naming the provider and a fix."""

    status = 503
    code = "auth_not_found"

    def __init__(self, model: str, providers: Sequence[str] = (), hint: str | None = None) -> None:
        self.model = model
        self.providers = tuple(providers)
        self.hint = hint or add_credential_hint(self.providers)
        names = ", ".join(self.providers) or "none"
        self.message = (
            f"no credential available for model '{model}' (provider: {names}): {self.hint}"
        )
        super().__init__(self.message)


_RESTING_SHOWN = 5

_WHY = {
    0: "could not be reached",
    401: "rejected the key (HTTP 401: check or replace it)",
    402: "is out of credit (HTTP 402)",
    403: "was refused (HTTP 403: check the account)",
    404: "does not serve this model (HTTP 404)",
    408: "timed out (HTTP 408)",
    429: "is rate-limited (HTTP 429)",
}


def utc_time(when: float) -> str:
    """A unix time as `2026-12-03 14:00:00 UTC`, for people reading an error."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


@dataclass(frozen=True, slots=True)
class Resting:
    """One benched credential, for the client's error: which, why, for how much longer.

    `reason` is the provider's own account of a spent quota (`upstream/resets.py`, e.g.
    "Codex usage_limit_reached resets") and `until` the unix time it named, when it did.
    """

    label: str
    status: int
    seconds: float
    reason: str = ""
    until: float | None = None

    def describe(self) -> str:
        why = _WHY.get(self.status, f"failed with HTTP {self.status}")
        if self.status >= 500:
            why = f"had upstream trouble (HTTP {self.status})"
        if self.reason:
            at = f" at {utc_time(self.until)}" if self.until is not None else ""
            why = f"{why.removesuffix(')')}: {self.reason}{at})"
        return f"{self.label} {why}, resting {go_duration(max(1, math.ceil(self.seconds)))} more"


class AllCoolingDown(SelectionError):
    """Every credential for the model is resting: HTTP 429 with Retry-After.

    Attributes:
        model: the client-visible model.
        providers: the providers whose credentials were considered.
        reset_seconds: whole seconds until the first credential frees (>= 1).
        resting: the benched credentials, soonest first, each with why.
        frees_at: the unix time the first frees, shown next to the delay.
    """

    status = 429
    code = "model_cooldown"

    def __init__(
        self,
        model: str,
        providers: Sequence[str],
        reset_seconds: float,
        resting: Sequence[Resting] = (),
        frees_at: float | None = None,
    ) -> None:
        self.model = model
        self.providers = tuple(providers)
        self.reset_seconds = max(1, math.ceil(reset_seconds))
        self.reset_time = go_duration(self.reset_seconds)
        self.resting = tuple(resting)
        via = f" via provider {self.provider}" if self.provider else ""
        self.message = (
            f"All credentials for model {model} are cooling down{via}; "
            f"the first frees in {self.reset_time}"
        )
        if frees_at is not None:
            self.message += f" ({utc_time(frees_at)})"
        if self.resting:
            shown = "; ".join(r.describe() for r in self.resting[:_RESTING_SHOWN])
            more = len(self.resting) - _RESTING_SHOWN
            self.message += f" ({shown}{f'; {more} more' if more > 0 else ''})"
        super().__init__(self.message)

    @property
    def provider(self) -> str | None:
        """The one provider involved, or None when several were."""
        return self.providers[0] if len(self.providers) == 1 else None

    def body_fields(self) -> dict[str, object]:
        """The fields of CLIProxyAPI's `model_cooldown` error object (core.md §1.8)."""
        fields: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "model": self.model,
            "reset_time": self.reset_time,
            "reset_seconds": self.reset_seconds,
        }
        if self.provider:
            fields["provider"] = self.provider
        return fields
