# -*- test-case-name: tests.observe.test_statistics -*-
"""Usage statistics (core.md §7): the usage queue, per-credential counters and the legacy
aggregated view of CLIProxyAPI v6.x. Everything is in memory and lost on restart."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zope.interface import implementer

from cliproxy.observe.events import CallEvent, ICallObserver

#: details kept per (client key, model) in the aggregated view
DETAILS_KEPT = 200
RECENT_KEPT = 20


def _tokens(e: CallEvent) -> dict[str, int]:
    return {
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "reasoning_tokens": e.reasoning_tokens,
        "cached_tokens": e.cached_tokens,
        "total_tokens": e.total_tokens,
    }


_last_iso: tuple[int, str] = (-1, "")


def _iso(ts: float) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SSZ`; formatted once per second (strftime is slow: glibc
    re-reads the time zone on every call)."""
    global _last_iso
    second = int(ts)
    if second != _last_iso[0]:
        _last_iso = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last_iso[1]


def queue_item(e: CallEvent) -> dict[str, Any]:
    """The §7.2 usage-queue element."""
    return {
        "timestamp": _iso(e.time),
        "latency_ms": round(e.latency * 1000) if e.latency is not None else 0,
        "ttft_ms": round(e.ttft * 1000) if e.ttft is not None else 0,
        "source": e.credential_id,
        "auth_index": e.credential_id,
        "tokens": _tokens(e),
        "failed": e.failed,
        "fail": {"status_code": e.status if e.failed else 0, "body": ""},
        "provider": e.provider,
        "executor_type": e.provider,
        "model": e.model,
        "alias": e.alias or e.model,
        "auth_type": "oauth" if ":" not in e.credential_id else "api_key",
        "api_key": e.client_key,
        "route": e.route,
    }


@dataclass
class _Counter:
    success: int = 0
    failed: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_KEPT))


@implementer(ICallObserver)
class UsageStatistics:
    """Listens to every upstream call.

    Args:
        enabled: the live `usage-statistics-enabled` (the queue fills only while on).
        retention: the live `redis-usage-queue-retention-seconds` (max 3600).
        now: current time.
    """

    def __init__(
        self, enabled: Callable[[], bool], retention: Callable[[], float], now: Callable[[], float]
    ) -> None:
        self._enabled = enabled
        self._retention = retention
        self._now = now
        self.queue: deque[tuple[float, dict[str, Any]]] = deque()
        self.per_credential: dict[str, _Counter] = {}
        self.total_requests = 0
        self.failure_count = 0
        self.total_tokens = 0
        self.apis: dict[str, dict[str, Any]] = {}
        self.by_day: dict[str, int] = {}
        self.by_hour: dict[str, int] = {}
        self.tokens_day: dict[str, int] = {}
        self.tokens_hour: dict[str, int] = {}

    def call_finished(self, event: CallEvent) -> None:
        if self._enabled():
            self.queue.append((event.time, queue_item(event)))
        self._expire()
        counter = self.per_credential.setdefault(event.credential_id, _Counter())
        if event.failed:
            counter.failed += 1
        else:
            counter.success += 1
        counter.recent.append(
            {
                "time": _iso(event.time),
                "success": int(not event.failed),
                "failed": int(event.failed),
            }
        )
        self._aggregate(event)

    def _aggregate(self, e: CallEvent) -> None:
        self.total_requests += 1
        self.failure_count += int(e.failed)
        self.total_tokens += e.total_tokens
        api = self.apis.setdefault(
            e.client_key, {"total_requests": 0, "total_tokens": 0, "models": {}}
        )
        api["total_requests"] += 1
        api["total_tokens"] += e.total_tokens
        model = api["models"].setdefault(
            e.model, {"total_requests": 0, "total_tokens": 0, "details": []}
        )
        model["total_requests"] += 1
        model["total_tokens"] += e.total_tokens
        details = model["details"]
        details.append(
            {
                "timestamp": _iso(e.time),
                "source": e.credential_id,
                "tokens": _tokens(e),
                "failed": e.failed,
            }
        )
        del details[:-DETAILS_KEPT]
        # day and hour from the per-second ISO stamp: no strftime per call
        stamp = _iso(e.time)
        day, hour = stamp[:10], stamp[11:13]
        for table, key, n in (
            (self.by_day, day, 1),
            (self.by_hour, hour, 1),
            (self.tokens_day, day, e.total_tokens),
            (self.tokens_hour, hour, e.total_tokens),
        ):
            table[key] = table.get(key, 0) + n

    def _expire(self) -> None:
        if not self.queue:
            return  # nothing to expire (the queue stays empty while statistics are off)
        horizon = self._now() - min(max(self._retention(), 0.0), 3600.0)
        while self.queue and self.queue[0][0] < horizon:
            self.queue.popleft()

    def pop(self, count: int) -> list[dict[str, Any]]:
        """Take up to `count` queued records, oldest first (§7.2)."""
        self._expire()
        out: list[dict[str, Any]] = []
        while self.queue and len(out) < count:
            out.append(self.queue.popleft()[1])
        return out

    def snapshot(self) -> dict[str, Any]:
        """The §7.3 legacy `GET /usage` body."""
        usage = {
            "total_requests": self.total_requests,
            "success_count": self.total_requests - self.failure_count,
            "failure_count": self.failure_count,
            "total_tokens": self.total_tokens,
            "apis": self.apis,
            "requests_by_day": self.by_day,
            "requests_by_hour": self.by_hour,
            "tokens_by_day": self.tokens_day,
            "tokens_by_hour": self.tokens_hour,
        }
        return {"usage": usage, "failed_requests": self.failure_count}

    def counts(self, credential_id: str) -> tuple[int, int, list[dict[str, Any]]]:
        c = self.per_credential.get(credential_id)
        if c is None:
            return 0, 0, []
        return c.success, c.failed, list(c.recent)
