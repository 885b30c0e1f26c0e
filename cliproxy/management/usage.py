# -*- test-case-name: tests.management.test_usage -*-
"""Usage endpoints (core.md §6.3, §7), `/metrics`, and the credential states both show."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.authdir import AuthDir, holder_of
from cliproxy.credentials.from_config import credentials_from_config
from cliproxy.credentials.model import Credential
from cliproxy.credentials.pool import CredentialPool
from cliproxy.management.access import LOCAL_HOSTS
from cliproxy.management.resource import (
    BadRequest,
    Endpoint,
    ManagementGate,
    Node,
    answer,
    peer_host,
    query,
)
from cliproxy.observe.metrics import Metrics
from cliproxy.observe.statistics import UsageStatistics


@dataclass(frozen=True)
class CredentialView:
    store: ConfigStore
    authdir: AuthDir
    pool: CredentialPool
    now: Callable[[], float]

    def all(self) -> list[Credential]:
        return credentials_from_config(self.store.current) + self.authdir.credentials()

    def state_of(self, cred: Credential) -> str:
        """ready, cooling, disabled or refresh_failing."""
        if cred.disabled:
            return "disabled"
        holder = holder_of(cred)
        if holder is not None and holder.status != "ok":
            return "refresh_failing"
        now = self.now()
        for state in self.pool.states():
            if state.credential_id == cred.id and state.until > now:
                return "cooling"
        return "ready"

    def pool_until(self, credential_id: str) -> tuple[float, float]:
        """(next retry time, quota reset time) of a credential's cooldowns (0: none)."""
        now, until, quota = self.now(), 0.0, 0.0
        for state in self.pool.states():
            if state.credential_id == credential_id and state.until > now:
                until = max(until, state.until)
                if state.quota:
                    quota = max(quota, state.until)
        return until, quota

    def states(self) -> Iterable[tuple[str, str]]:
        return [(c.provider, self.state_of(c)) for c in self.all()]


class Usage(Endpoint):
    """GET /usage: the legacy aggregated view (§7.3)."""

    def __init__(self, statistics: UsageStatistics) -> None:
        super().__init__()
        self.statistics = statistics

    def render_GET(self, request: Request) -> bytes:
        return answer(request, self.statistics.snapshot())


class UsageQueue(Usage):
    """GET /usage-queue?count=N pops up to N records (§7.2)."""

    def render_GET(self, request: Request) -> bytes:
        raw = query(request, "count") or "1"
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequest("invalid count")
        return answer(request, self.statistics.pop(int(raw)))


class APIKeyUsage(Endpoint):
    """GET /api-key-usage: counters per API-key credential, `{provider: {"base|key": ...}}`."""

    def __init__(self, statistics: UsageStatistics, view: CredentialView) -> None:
        super().__init__()
        self.statistics = statistics
        self.view = view

    def render_GET(self, request: Request) -> bytes:
        out: dict[str, dict[str, Any]] = {}
        for cred in credentials_from_config(self.view.store.current):
            success, failed, recent = self.statistics.counts(cred.id)
            entry = {"success": success, "failed": failed, "recent_requests": recent}
            out.setdefault(cred.provider, {})[f"{cred.base_url}|{cred.api_key}"] = entry
        return answer(request, out)


class MetricsLeaf(Endpoint):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        body = self.metrics.exposition()
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"content-length", b"%d" % len(body))
        return body


class MetricsPage(Resource):
    """`/metrics`: open to loopback peers, else behind the management key."""

    isLeaf = True

    def __init__(self, metrics: Metrics, gate_for: Callable[[Resource], ManagementGate]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.leaf = MetricsLeaf(metrics)
        self.gate = gate_for(Node(self.leaf))

    def render(self, request: Request) -> bytes | int:
        if peer_host(request) in LOCAL_HOSTS:
            return self.leaf.render(request)
        return self.gate.render(request)


def usage_children(node: Resource, statistics: UsageStatistics, view: CredentialView) -> None:
    node.putChild(b"usage", Usage(statistics))
    node.putChild(b"usage-queue", UsageQueue(statistics))
    node.putChild(b"api-key-usage", APIKeyUsage(statistics, view))
