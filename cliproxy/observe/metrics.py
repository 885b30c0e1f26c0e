# -*- test-case-name: tests.management.test_usage -*-
"""Prometheus metrics with the names dashboards rely on (issue 13, item 5).

Each `Metrics` has its own `CollectorRegistry` (never the process-global one), so two
apps in one process, as in tests, do not share counters. Gauges that describe current
state (credentials, open streams) are read when scraped, from suppliers passed in; open
streams and token refreshes default to the process counts of `cliproxy.observe.signals`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from zope.interface import implementer

from cliproxy.observe.events import CallEvent, ICallObserver
from cliproxy.observe.signals import COUNTS

CREDENTIAL_STATES = ("ready", "cooling", "disabled", "refresh_failing")
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _StateCollector:
    """Scrape-time gauges from suppliers."""

    def __init__(
        self,
        credentials: Callable[[], Iterable[tuple[str, str]]],
        open_streams: Callable[[], int],
        amp_routes: Callable[[], Mapping[str, int]],
        refreshes: Callable[[], Mapping[tuple[str, str], int]],
    ) -> None:
        self._credentials = credentials
        self._open_streams = open_streams
        self._amp_routes = amp_routes
        self._refreshes = refreshes

    def collect(self) -> Iterable[Any]:
        creds = GaugeMetricFamily(
            "cliproxy_credentials",
            "Credentials by provider and state",
            labels=["provider", "state"],
        )
        counts: dict[tuple[str, str], int] = {}
        providers: set[str] = set()
        for provider, state in self._credentials():
            providers.add(provider)
            counts[(provider, state)] = counts.get((provider, state), 0) + 1
        for provider in sorted(providers):
            for state in CREDENTIAL_STATES:
                creds.add_metric([provider, state], counts.get((provider, state), 0))
        yield creds
        yield GaugeMetricFamily(
            "cliproxy_open_streams", "Client streams being relayed now", value=self._open_streams()
        )
        amp = CounterMetricFamily(
            "cliproxy_amp_requests", "Amp model calls by route type", labels=["route_type"]
        )
        for route, n in sorted(self._amp_routes().items()):
            amp.add_metric([route], n)
        yield amp
        refreshes = CounterMetricFamily(
            "cliproxy_token_refreshes",
            "OAuth token refreshes by provider and result",
            labels=["provider", "result"],
        )
        for (provider, result), n in sorted(self._refreshes().items()):
            refreshes.add_metric([provider, result], n)
        yield refreshes


@implementer(ICallObserver)
class Metrics:
    """The registry, the per-call counters (as a `CallEvent` observer) and reload counts."""

    def __init__(
        self,
        credentials: Callable[[], Iterable[tuple[str, str]]] = lambda: (),
        open_streams: Callable[[], int] = lambda: COUNTS.open_streams,
        amp_routes: Callable[[], Mapping[str, int]] = lambda: {},
        refreshes: Callable[[], Mapping[tuple[str, str], int]] = lambda: COUNTS.refreshes,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "cliproxy_requests",
            "Upstream calls",
            ["route", "provider", "model", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "cliproxy_request_duration_seconds",
            "Upstream call duration",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "cliproxy_time_to_first_token_seconds",
            "Time to the first streamed byte",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "cliproxy_tokens", "Tokens by direction", ["provider", "model", "direction"], registry=r
        )
        self.errors = Counter(
            "cliproxy_upstream_errors",
            "Upstream calls that failed",
            ["provider", "status"],
            registry=r,
        )
        self.reloads = Counter("cliproxy_reloads", "Config reloads applied", registry=r)
        r.register(_StateCollector(credentials, open_streams, amp_routes, refreshes))
        # labelled children by label values: `.labels()` checks, converts and locks on
        # every call, and the same few label sets recur on every request
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def call_finished(self, event: CallEvent) -> None:
        status = str(event.status)
        self._child(self.requests, event.route, event.provider, event.model, status).inc()
        if event.latency is not None:
            self._child(self.duration, event.provider).observe(event.latency)
        if event.ttft is not None:
            self._child(self.ttft, event.provider).observe(event.ttft)
        for direction, n in (
            ("input", event.input_tokens),
            ("output", event.output_tokens),
            ("reasoning", event.reasoning_tokens),
            ("cached", event.cached_tokens),
        ):
            if n:
                self._child(self.tokens, event.provider, event.model, direction).inc(n)
        if event.failed:
            self._child(self.errors, event.provider, status).inc()

    def config_reloaded(self, old: object, new: object) -> None:
        self.reloads.inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
