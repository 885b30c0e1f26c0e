# -*- test-case-name: tests.store.test_shared -*-
"""`attach`: connect one instance's pool, auth-dir, usage and views to the shared store."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from twisted.web.resource import Resource

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.pool import CredentialPool
from cliproxy.observe.events import CallEvents
from cliproxy.store.config_doc import SharedConfig
from cliproxy.store.cooldowns import SharedCooldowns
from cliproxy.store.shared import SharedStore
from cliproxy.store.tokens import SharedTokens
from cliproxy.store.usage import ClusterUsage, SharedUsage

__all__ = ["attach", "attach_views"]


def attach(
    store: SharedStore,
    config: ConfigStore,
    pool: CredentialPool,
    authdir: AuthDir,
    events: CallEvents,
    now: Callable[[], float],
) -> SharedUsage:
    """Benches, token files, config and usage of this instance reach the others, and theirs
    reach it."""
    SharedCooldowns(store, pool, now)
    SharedTokens(store, authdir)
    SharedConfig(store, config)
    usage = SharedUsage(store)
    events.subscribe(usage)
    return usage


def attach_views(usage: SharedUsage, management: Resource, metrics: CollectorRegistry) -> None:
    """`/v0/management/cluster-usage` and the `cliproxy_cluster_*` series of /metrics."""
    management.putChild(b"cluster-usage", ClusterUsage(usage))
    metrics.register(usage)
