# -*- test-case-name: tests.management.test_config_endpoints -*-
"""The `/v0/management` subtree: every endpoint built once, behind one `ManagementGate`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.affinity import SessionAffinity
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.net import HTTPRequester, IClientReactor
from cliproxy.credentials.pool import CredentialPool
from cliproxy.management.access import ManagementAccess
from cliproxy.management.ampcode import ampcode_tree
from cliproxy.management.api_call import APICall
from cliproxy.management.authfiles import AuthFileDeps, auth_files_tree
from cliproxy.management.lists import KEY_LISTS, CompatList, ConfigMap, KeyList, StringList
from cliproxy.management.logs import logs_children
from cliproxy.management.oauth import OAuthLogins, oauth_children
from cliproxy.management.panel import PanelPage, PanelStatus
from cliproxy.management.panel_fetch import PanelFetcher
from cliproxy.management.resource import ManagementGate, Node
from cliproxy.management.settings import (
    SCALARS,
    ConfigJSON,
    ConfigYAML,
    LatestVersion,
    NoPlugins,
    ProxyURL,
    RoutingStrategy,
    ScalarEndpoint,
)
from cliproxy.management.usage import CredentialView, MetricsPage, usage_children
from cliproxy.management.vertex import VertexImport
from cliproxy.management.writer import ConfigWriter
from cliproxy.observe.metrics import Metrics
from cliproxy.observe.statistics import UsageStatistics
from cliproxy.registry import ModelRegistry
from cliproxy.usage import UsageBook


@dataclass(frozen=True)
class ManagementParts:
    """What the management tree is built from (the composition root passes these)."""

    store: ConfigStore
    writer: ConfigWriter
    clock: IReactorTime
    environ: Mapping[str, str]
    authdir: AuthDir
    pool: CredentialPool
    usage: UsageBook
    statistics: UsageStatistics
    metrics: Metrics
    #: Amp's calls per route type (local, mapped, amp-upstream)
    amp_routes: Callable[[], Mapping[str, int]] = lambda: {}
    #: for OAuth logins started from the API (none without them)
    reactor: IClientReactor | None = None
    http: HTTPRequester | None = None
    #: the live model registry (auth-files/models)
    registry: Callable[[], ModelRegistry] | None = None
    #: routing.session-affinity, for the bound sessions in the auth-files view
    affinity: SessionAffinity | None = None


@dataclass(frozen=True)
class Management:
    """The built resources: `/v0/management`, `/metrics` and `/management.html`."""

    gate: ManagementGate
    metrics_page: MetricsPage
    panel: PanelPage


def build_management(parts: ManagementParts) -> Management:
    store, writer = parts.store, parts.writer
    access = ManagementAccess(
        lambda: store.current.remote_management.secret_key,
        lambda: store.current.remote_management.allow_remote,
        parts.clock,
        parts.environ,
    )
    tree = Node()
    tree.putChild(b"config", ConfigJSON(store))
    tree.putChild(b"config.yaml", ConfigYAML(writer))
    tree.putChild(b"latest-version", LatestVersion())
    tree.putChild(b"plugins", NoPlugins())
    nested: dict[str, Node] = {}
    for name, scalar in SCALARS.items():
        cls = ProxyURL if name == "proxy-url" else ScalarEndpoint
        leaf = cls(name, scalar, store, writer)
        if "/" in name:
            head, tail = name.split("/", 1)
            parent = nested.get(head)
            if parent is None:
                parent = nested[head] = Node()
                tree.putChild(head.encode("ascii"), parent)
            parent.putChild(tail.encode("ascii"), leaf)
        else:
            tree.putChild(name.encode("ascii"), leaf)
    routing = Node()
    routing.putChild(b"strategy", RoutingStrategy(store, writer))
    tree.putChild(b"routing", routing)
    tree.putChild(b"api-keys", StringList(store, writer, "api-keys"))
    for key in KEY_LISTS:
        tree.putChild(key.encode("ascii"), KeyList(store, writer, key))
    tree.putChild(b"openai-compatibility", CompatList(store, writer, "openai-compatibility"))
    for key in ("oauth-excluded-models", "oauth-model-alias"):
        tree.putChild(key.encode("ascii"), ConfigMap(store, writer, key))
    tree.putChild(b"ampcode", ampcode_tree(store, writer))
    deps = AuthFileDeps(
        parts.authdir,
        parts.pool,
        parts.usage,
        parts.clock.seconds,
        parts.registry,
        affinity=parts.affinity,
    )
    tree.putChild(b"auth-files", auth_files_tree(deps))
    view = CredentialView(store, parts.authdir, parts.pool, parts.clock.seconds)
    usage_children(tree, parts.statistics, view)
    logs_children(tree, store, parts.environ)
    if parts.reactor is not None and parts.http is not None:
        logins = OAuthLogins(store, parts.reactor, parts.http, parts.authdir.scan, parts.clock)
        oauth_children(tree, logins)
        tree.putChild(b"api-call", APICall(store, view.all, parts.http, parts.clock))
    vertex = Node()
    vertex.putChild(b"import", VertexImport(store, parts.authdir.scan))
    tree.putChild(b"vertex", vertex)
    tree.putChild(b"panel-status", PanelStatus(deps, view, parts.amp_routes))
    page = MetricsPage(parts.metrics, lambda inner: ManagementGate(access, inner))
    fetcher = (
        None if parts.http is None else PanelFetcher(lambda: store.current, parts.http, parts.clock)
    )
    panel = PanelPage(store, parts.environ, fetcher)
    return Management(ManagementGate(access, tree), page, panel)


def mount(root: Resource, management: Management) -> None:
    """`/v0/management` and `/metrics` under `root`."""
    v0 = Node()
    v0.putChild(b"management", management.gate)
    root.putChild(b"v0", v0)
    root.putChild(b"metrics", management.metrics_page)
    root.putChild(b"management.html", management.panel)
