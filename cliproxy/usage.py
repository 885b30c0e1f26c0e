# -*- test-case-name: tests.test_usage -*-
"""In-memory usage records: tokens per request, model, credential and client key.

The management API reads these; nothing here touches the disk. Client keys are kept
only as their last four characters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class UsageRecord:
    time: float
    model: str
    provider: str
    credential_id: str
    client_key: str  # last 4 characters, or "-"
    route: str  # "local" now; Amp adds "mapped" and "amp-upstream"
    status: int
    stream: bool
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class Totals:
    requests: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, rec: UsageRecord) -> None:
        self.requests += 1
        if rec.status >= 400:
            self.failed += 1
        self.input_tokens += rec.usage.input_tokens
        self.output_tokens += rec.usage.output_tokens


class UsageBook:
    """The last `keep` records plus running totals per model, credential, route and key."""

    def __init__(self, now: Callable[[], float], keep: int = 10000) -> None:
        self._now = now
        self.records: deque[UsageRecord] = deque(maxlen=keep)
        self.total = Totals()
        self.by_model: dict[str, Totals] = {}
        self.by_credential: dict[str, Totals] = {}
        self.by_route: dict[str, Totals] = {}
        self.by_client: dict[str, Totals] = {}

    def record(
        self,
        *,
        model: str,
        provider: str,
        credential_id: str,
        client_key: str | None,
        status: int,
        stream: bool,
        usage: Usage | None = None,
        route: str = "local",
    ) -> UsageRecord:
        rec = UsageRecord(
            time=self._now(),
            model=model,
            provider=provider,
            credential_id=credential_id,
            client_key=("…" + client_key[-4:]) if client_key else "-",
            route=route,
            status=status,
            stream=stream,
            usage=usage or Usage(),
        )
        self.records.append(rec)
        self.total.add(rec)
        for table, key in (
            (self.by_model, model),
            (self.by_credential, credential_id),
            (self.by_route, route),
            (self.by_client, rec.client_key),
        ):
            t = table.get(key)
            if t is None:
                t = table[key] = Totals()
            t.add(rec)
        return rec

    def snapshot(self) -> dict[str, Any]:
        def dump(table: dict[str, Totals]) -> dict[str, Any]:
            return {k: vars_of(v) for k, v in table.items()}

        return {
            "total": vars_of(self.total),
            "by_model": dump(self.by_model),
            "by_credential": dump(self.by_credential),
            "by_route": dump(self.by_route),
            "by_client": dump(self.by_client),
        }


def vars_of(t: Totals) -> dict[str, int]:
    return {
        "requests": t.requests,
        "failed": t.failed,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
    }


def usage_from_response(fmt: str, body: Any) -> Usage:
    """Token counts from a non-stream response body of wire format `fmt` (core.md §2.0)."""
    u = Usage()
    if not isinstance(body, dict):
        return u
    if fmt == "gemini":
        meta = body.get("usageMetadata")
        if not isinstance(meta, dict) and isinstance(body.get("response"), dict):
            meta = body["response"].get("usageMetadata")
        if isinstance(meta, dict):
            u.input_tokens = _int(meta.get("promptTokenCount"))
            u.output_tokens = _int(meta.get("candidatesTokenCount")) + _int(
                meta.get("thoughtsTokenCount")
            )
            u.reasoning_tokens = _int(meta.get("thoughtsTokenCount"))
            u.cached_tokens = _int(meta.get("cachedContentTokenCount"))
        return u
    usage = body.get("usage")
    if not isinstance(usage, dict) and isinstance(body.get("response"), dict):
        usage = body["response"].get("usage")
    if not isinstance(usage, dict):
        return u
    if fmt == "claude":
        u.input_tokens = (
            _int(usage.get("input_tokens"))
            + _int(usage.get("cache_read_input_tokens"))
            + _int(usage.get("cache_creation_input_tokens"))
        )
        u.output_tokens = _int(usage.get("output_tokens"))
        u.cached_tokens = _int(usage.get("cache_read_input_tokens"))
        return u
    u.input_tokens = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    u.output_tokens = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    for details_key in ("prompt_tokens_details", "input_tokens_details"):
        details = usage.get(details_key)
        if isinstance(details, dict):
            u.cached_tokens = _int(details.get("cached_tokens"))
    for details_key in ("completion_tokens_details", "output_tokens_details"):
        details = usage.get(details_key)
        if isinstance(details, dict):
            u.reasoning_tokens = _int(details.get("reasoning_tokens"))
    return u


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0
