# -*- test-case-name: tests.upstream.test_resets -*-
"""When a provider says its quota comes back, as a cooldown in seconds.

Providers name the reset of an exhausted quota in their own way:

- Codex (ChatGPT backend): `{"error": {"type": "usage_limit_reached", "resets_at": <unix s>,
  "resets_in_seconds": <s>}}`;
- Anthropic: `anthropic-ratelimit-unified-reset` and per-window
  `anthropic-ratelimit-unified-<window>-reset` headers (unix seconds, or RFC 3339), with
  `anthropic-ratelimit-unified-<window>-status: rejected` naming the window that is spent;
- Google (Gemini, Gemini CLI, Vertex): `google.rpc.RetryInfo.retryDelay` ("12.5s") and
  `google.rpc.ErrorInfo.metadata.quotaResetDelay` (a Go duration such as "1h2m3.5s" or
  "373.8ms") or `quotaResetTimeStamp` (RFC 3339) in the error details.

`quota_reset` returns the first of these it finds, clamped to [`MIN_RESET`, `MAX_RESET`], with
a short reason for the log and the client's cooling-down message.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twisted.web.http_headers import Headers

__all__ = ["MAX_RESET", "MIN_RESET", "QuotaReset", "parse_go_duration", "quota_reset"]

#: a reset sooner than this is rounded up: asking again at once would only fail again
MIN_RESET = 1.0
#: a reset further away is not believed (a weekly window): we ask again a day later
MAX_RESET = 24 * 3600.0

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_ANTHROPIC = "anthropic-ratelimit-unified-"


@dataclass(frozen=True, slots=True)
class QuotaReset:
    """A provider-announced reset: wait `seconds` (already clamped); `reason` says whose."""

    seconds: float
    reason: str


def quota_reset(headers: Headers | None, body: bytes, now: float) -> QuotaReset | None:
    """The quota reset an error response announces, or None when it names none.

    Args:
        headers: the upstream response headers (Anthropic's unified rate-limit headers).
        body: the upstream error body (Codex and Google put the reset there).
        now: the current time in unix seconds (resets given as a time become a delay).
    """
    error = _error_object(body)
    found = _codex(error, now) or _google(error, now) or _anthropic(headers, now)
    if found is None:
        return None
    seconds, reason = found
    return QuotaReset(min(max(seconds, MIN_RESET), MAX_RESET), reason)


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go/protobuf duration ("1h2m3.5s", "373.8ms", "12s"), None if not one."""
    text = text.strip()
    if not text or _DURATION_PART.sub("", text) not in ("", "-"):
        return None
    total = sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))
    return None if text.startswith("-") else total


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return {}
    if isinstance(doc, list) and doc:  # Google sometimes wraps the error in a list
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _when(value: str, now: float) -> float | None:
    """Seconds until `value`: unix seconds or an RFC 3339 time."""
    number = _number(value)
    if number is not None:
        return number - now
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp() - now
    except ValueError:
        return None


def _codex(error: dict[str, Any], now: float) -> tuple[float, str] | None:
    seconds = _number(error.get("resets_in_seconds"))
    if seconds is None and _number(error.get("resets_at")) is not None:
        seconds = float(error["resets_at"]) - now
    if seconds is None:
        return None
    return seconds, f"Codex {error.get('type') or 'usage limit'} resets"


def _google(error: dict[str, Any], now: float) -> tuple[float, str] | None:
    details = error.get("details")
    if not isinstance(details, list):
        return None
    retry = quota = None
    for d in details:
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("retryDelay"), str):
            retry = parse_go_duration(d["retryDelay"])
        meta = d.get("metadata")
        if isinstance(meta, dict) and quota is None:
            if isinstance(meta.get("quotaResetDelay"), str):
                quota = parse_go_duration(meta["quotaResetDelay"])
            elif isinstance(meta.get("quotaResetTimeStamp"), str):
                quota = _when(meta["quotaResetTimeStamp"], now)
    if retry is not None:
        return retry, "Google RetryInfo.retryDelay"
    if quota is not None:
        return quota, "Google quota reset"
    return None


def _anthropic(headers: Headers | None, now: float) -> tuple[float, str] | None:
    if headers is None:
        return None
    values = {
        k.decode("latin-1").lower(): v[0].decode("latin-1")
        for k, v in headers.getAllRawHeaders()
        if k.lower().startswith(_ANTHROPIC.encode()) and v
    }
    rejected = []
    for name, status in values.items():
        if name.endswith("-status") and status.strip().lower() == "rejected":
            window = name[len(_ANTHROPIC) :].removesuffix("status").rstrip("-")
            reset = values.get(f"{_ANTHROPIC}{window}-reset" if window else f"{_ANTHROPIC}reset")
            when = _when(reset, now) if reset else None
            if when is not None:
                rejected.append((when, f"Anthropic {window or 'unified'} limit resets"))
    if rejected:  # every spent window must have come back
        return max(rejected)
    generic = values.get(f"{_ANTHROPIC}reset")
    when = _when(generic, now) if generic else None
    return (when, "Anthropic unified limit resets") if when is not None else None
