# -*- test-case-name: tests.test_app -*-
"""The composition root: one typed function builds the whole object graph from a Config.

`build_app` makes every collaborator once, in dependency order, and passes each one in
through constructors; the `App` it returns is a frozen record of what was built. Nothing
is attached to it, to the Site or to a Request afterwards. Live reload swaps the
`ConfigStore`'s immutable `Config` snapshot, and the `Catalog` swaps its immutable
`ModelRegistry`; every component reads those per use.

The service tree around an `App` (listener, drain, watchers, refresher) is
`cliproxy.service.build_service`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource

from cliproxy.amp.module import AmpCore, AmpModule
from cliproxy.amp.paths import MOUNTS
from cliproxy.amp.routes import CallEndpoints, mount_amp
from cliproxy.catalog import Catalog
from cliproxy.config import Config
from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.affinity import SessionAffinity
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.net import IClientReactor
from cliproxy.credentials.pool import CredentialPool
from cliproxy.management.tree import ManagementParts, build_management, mount
from cliproxy.management.usage import CredentialView
from cliproxy.management.writer import ConfigWriter
from cliproxy.observe.events import CallEvents, ObservedUsageBook
from cliproxy.observe.metrics import Metrics
from cliproxy.observe.requestlog import RequestLogger
from cliproxy.observe.statistics import UsageStatistics
from cliproxy.registry import ModelRegistry
from cliproxy.routing import Router
from cliproxy.upstream.http import UpstreamHTTP
from cliproxy.usage import UsageBook
from cliproxy.web.admission import Admission
from cliproxy.web.endpoints import (
    Backend,
    ChatCompletions,
    Completions,
    CountTokens,
    Messages,
    Responses,
)
from cliproxy.web.guard import KeyGuard
from cliproxy.web.http import CliproxySite
from cliproxy.web.models import GeminiModels, OpenAIModels
from cliproxy.web.resources import Container, Health, Index, Root
from cliproxy.web.responses_socket import ResponsesSocket

if TYPE_CHECKING:  # psycopg2 is needed only with a store
    from cliproxy.store.shared import SharedStore


@dataclass(frozen=True)
class AmpOptions:
    """Test and embedding knobs for the Amp module (see `AmpModule`)."""

    environ: Mapping[str, str] | None = None
    secrets_path: str | None = None
    secrets_ttl: float | None = None
    tls_policy: Any = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"environ": self.environ, "tls_policy": self.tls_policy}
        if self.secrets_path is not None:
            out["secrets_path"] = self.secrets_path
        if self.secrets_ttl is not None:
            out["secrets_ttl"] = self.secrets_ttl
        return out


@dataclass(frozen=True)
class App:
    """Everything `build_app` made, for the service tree, the CLI and tests to read.

    Attributes:
        reactor: the reactor (network and timers).
        clock: time for cooldowns and usage (a `task.Clock` in tests, else the reactor).
        store: the live config snapshot.
        http: the shared upstream HTTP client.
        pool: credential selection and cooldowns.
        usage: usage records.
        authdir: OAuth token files.
        catalog: the live model registry and listings.
        router: client request -> upstream answer.
        backend: what the inference endpoints use.
        amp: the Amp integration.
        root: the Resource tree.
        site: the HTTP factory serving `root`.
        writer: management's config-file writer.
        events: one CallEvent per upstream call, to its observers.
        statistics: usage statistics (core.md §7).
        metrics: the Prometheus registry behind /metrics.
    """

    reactor: IClientReactor
    clock: IReactorTime
    store: ConfigStore
    http: UpstreamHTTP
    pool: CredentialPool
    usage: UsageBook
    authdir: AuthDir
    catalog: Catalog
    router: Router
    backend: Backend
    amp: AmpModule
    root: Resource
    site: CliproxySite = field(repr=False)
    writer: ConfigWriter = field(repr=False)
    events: CallEvents = field(repr=False)
    statistics: UsageStatistics = field(repr=False)
    metrics: Metrics = field(repr=False)

    @property
    def config(self) -> Config:
        return self.store.current

    @property
    def registry(self) -> ModelRegistry:
        return self.catalog.registry


def build_app(
    config: Config | ConfigStore,
    reactor: IClientReactor,
    *,
    clock: IReactorTime | None = None,
    http: UpstreamHTTP | None = None,
    amp: AmpOptions = AmpOptions(),
    environ: Mapping[str, str] | None = None,
    shared: SharedStore | None = None,
) -> App:
    """Build the object graph for `config` (a Config, or a ConfigStore to share).

    Raises:
        cliproxy.amp.AmpConfigError: the configured Amp upstream URL is unusable.
    """
    store = config if isinstance(config, ConfigStore) else ConfigStore(config)
    clock = clock or reactor
    assert clock is not None
    serving = _serving(store, reactor, clock, http, shared)
    core = AmpCore(
        store,
        lambda: serving.catalog.registry,
        serving.catalog,
        serving.backend,
        serving.http,
        serving.usage,
        reactor,
    )
    amp_module = AmpModule(core, **amp.kwargs())
    amp_module.register(store.current.ampcode)
    amp_module.subscribe(store)
    root = build_root(store, serving.catalog, serving.backend, amp_module)
    environ = os.environ if environ is None else environ
    ops = _operations(root, store, serving, amp_module, reactor, clock, environ)
    if shared is not None:  # cliproxy.store: benches, token files and usage reach the others
        from cliproxy.store.attach import attach, attach_views

        usage = attach(shared, store, serving.pool, serving.authdir, serving.events, clock.seconds)
        attach_views(usage, ops.management, ops.metrics.registry)
    site = CliproxySite(
        root,
        limits=lambda: store.current.limits,
        reactor=reactor,
        normalised=frozenset(name.encode("ascii") for name in MOUNTS),
        admission=Admission(lambda: store.current, clock),
        request_log=RequestLogger(lambda: store.current, environ),
    )
    return App(
        reactor=reactor,
        clock=clock,
        store=store,
        http=serving.http,
        pool=serving.pool,
        usage=serving.usage,
        authdir=serving.authdir,
        catalog=serving.catalog,
        router=serving.router,
        backend=serving.backend,
        amp=amp_module,
        root=root,
        site=site,
        writer=ops.writer,
        events=serving.events,
        statistics=ops.statistics,
        metrics=ops.metrics,
    )


@dataclass(frozen=True)
class _Serving:
    """The part of the graph that answers model calls (floors 1-4 below the web tree)."""

    events: CallEvents
    usage: ObservedUsageBook
    pool: CredentialPool
    http: UpstreamHTTP
    authdir: AuthDir
    catalog: Catalog
    router: Router
    backend: Backend


def _serving(
    store: ConfigStore,
    reactor: IClientReactor,
    clock: IReactorTime,
    http: UpstreamHTTP | None,
    shared: SharedStore | None,
) -> _Serving:
    # every upstream call recorded in the usage book is also a CallEvent (cliproxy.observe)
    events = CallEvents()
    usage = ObservedUsageBook(clock.seconds, events)
    pool = CredentialPool(
        clock.seconds,
        random.Random(),
        strategy=lambda: store.current.routing.strategy,
        disable_cooling=lambda: store.current.disable_cooling,
    )
    if http is None:
        # the connect timeout is read at start (pools are built once)
        http = UpstreamHTTP(
            reactor, connect_timeout=store.current.upstream_timeouts.connect_seconds
        )
    authdir = AuthDir(
        lambda: store.current.auth_dir,
        clock,
        lambda: store.current.oauth_endpoints,
        shared=store.current.workers > 1,
        refresh_lock=shared.refresh_lock if shared is not None else None,
    )
    authdir.scan()
    catalog = Catalog(store, authdir, pool)
    affinity = SessionAffinity(
        clock.seconds,
        lambda: store.current.routing.session_affinity,
        lambda: store.current.routing.session_affinity_ttl,
    )
    router = Router(
        reactor, lambda: store.current, lambda: catalog.registry, pool, http, usage, affinity
    )
    backend = Backend(router, lambda: store.current, reactor)
    return _Serving(events, usage, pool, http, authdir, catalog, router, backend)


@dataclass(frozen=True)
class _Operations:
    writer: ConfigWriter
    statistics: UsageStatistics
    metrics: Metrics
    #: the endpoint tree behind /v0/management's gate
    management: Resource


def _operations(
    root: Resource,
    store: ConfigStore,
    serving: _Serving,
    amp_module: AmpModule,
    reactor: IClientReactor,
    clock: IReactorTime,
    environ: Mapping[str, str],
) -> _Operations:
    """Operating it (cliproxy.management, cliproxy.observe): /v0/management, /metrics."""
    writer = ConfigWriter(store)
    view = CredentialView(store, serving.authdir, serving.pool, clock.seconds)
    statistics, metrics = _observers(store, serving.events, amp_module, clock, view)
    parts = ManagementParts(
        store,
        writer,
        clock,
        environ,
        serving.authdir,
        serving.pool,
        serving.usage,
        statistics,
        metrics,
        _amp_routes(amp_module),
        reactor,
        serving.http,
        lambda: serving.catalog.registry,
        affinity=serving.router.affinity,
    )
    management = build_management(parts)
    mount(root, management)
    return _Operations(writer, statistics, metrics, management.gate.tree)


def _amp_routes(amp: AmpModule) -> Callable[[], Mapping[str, int]]:
    return lambda: {k: t.requests for k, t in amp.stats.by_route.items()}


def _observers(
    store: ConfigStore,
    events: CallEvents,
    amp: AmpModule,
    clock: IReactorTime,
    view: CredentialView,
) -> tuple[UsageStatistics, Metrics]:
    """The usage statistics and the Prometheus metrics, listening to every upstream call."""

    def retention() -> float:
        value = store.current.raw.get("redis-usage-queue-retention-seconds", 60)
        return float(value) if isinstance(value, int | float) else 60.0

    statistics = UsageStatistics(
        lambda: store.current.usage_statistics_enabled, retention, clock.seconds
    )
    metrics = Metrics(
        credentials=view.states,
        amp_routes=_amp_routes(amp),
    )
    events.subscribe(statistics)
    events.subscribe(metrics)
    store.subscribe(metrics.config_reloaded)
    return statistics, metrics


def build_root(store: ConfigStore, catalog: Catalog, backend: Backend, amp: AmpModule) -> Resource:
    """The Resource tree: `/`, `/healthz`, `/v1`, `/v1beta` and Amp's routes.

    Every API endpoint is wrapped once in the client-key guard; the Amp provider routes
    reuse the same endpoint objects.
    """

    def api_keys() -> tuple[str, ...]:
        return store.current.api_keys

    def guard(resource: IResource) -> KeyGuard:
        return KeyGuard(resource, api_keys)

    endpoints = CallEndpoints(
        chat=ChatCompletions(backend),
        completions=Completions(backend),
        responses=Responses(backend),
        messages=Messages(backend),
        count_tokens=CountTokens(backend),
    )
    root = Root()
    root.putChild(b"", Index())
    root.putChild(b"healthz", Health())
    v1 = Container()
    v1.putChild(b"models", guard(OpenAIModels(catalog, backend)))
    chat = Container()
    chat.putChild(b"completions", guard(endpoints.chat))
    v1.putChild(b"chat", chat)
    v1.putChild(b"completions", guard(endpoints.completions))
    responses = guard(ResponsesSocket(endpoints.responses, backend))
    v1.putChild(b"responses", responses)
    messages = Messages(backend)
    messages.isLeaf = False
    messages.putChild(b"count_tokens", endpoints.count_tokens)
    v1.putChild(b"messages", guard(messages))
    root.putChild(b"v1", v1)
    v1beta = Container()
    v1beta.putChild(b"models", guard(GeminiModels(catalog, backend)))
    root.putChild(b"v1beta", v1beta)
    # the Codex CLI's own paths (`chatgpt_base_url = http://host:port/backend-api/codex`)
    codex = Container()
    codex.putChild(b"responses", responses)
    backend_api = Container()
    backend_api.putChild(b"codex", codex)
    root.putChild(b"backend-api", backend_api)
    mount_amp(root, amp, endpoints, catalog, api_keys)
    return root
