# -*- test-case-name: tests.test_service -*-
"""Wiring: the App every resource reads from, the Resource tree, and the service tree."""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.web.resource import Resource

from cliproxy.amp import install_amp
from cliproxy.config import Config
from cliproxy.config.watcher import ConfigStore, ConfigWatcher
from cliproxy.formats import Family
from cliproxy.web.endpoints import (
    ChatCompletions,
    Completions,
    CountTokens,
    Messages,
    Responses,
)
from cliproxy.web.http import CliproxySite
from cliproxy.web.models import GeminiModels, OpenAIModels
from cliproxy.web.resources import Container, Health, Index, Root

log = Logger()


class App:
    """What the resources share: the reactor, the live config, the model registry built
    from it, the credential pool, the upstream HTTP client, the router and usage."""

    def __init__(
        self, reactor: Any, store: ConfigStore, http: Any = None, clock: Any = None
    ) -> None:
        import random

        from cliproxy.credentials.pool import CredentialPool
        from cliproxy.routing import Router
        from cliproxy.usage import UsageBook

        self.reactor = reactor
        self.store = store
        #: time for cooldowns and usage (a task.Clock in tests; the reactor otherwise)
        self.clock = clock or reactor
        self.usage = UsageBook(self.clock.seconds)
        self.pool = CredentialPool(
            self.clock.seconds,
            random.Random(),
            strategy=lambda: store.current.routing.strategy,
            disable_cooling=lambda: store.current.disable_cooling,
        )
        if http is None:
            from cliproxy.upstream.http import UpstreamHTTP

            # the connect timeout is read at start (pools are built once)
            http = UpstreamHTTP(
                reactor, connect_timeout=store.current.upstream_timeouts.connect_seconds
            )
        self.http = http
        from cliproxy.credentials.authdir import AuthDir

        # OAuth accounts (token files in auth-dir); a change there rebuilds the registry
        self.authdir = AuthDir(
            lambda: store.current.auth_dir, self.clock, lambda: store.current.oauth_endpoints
        )
        self.authdir.scan()
        self.authdir.subscribe(self._accounts_changed)
        self._registry = self._build_registry(store.current)
        store.subscribe(self._config_changed)
        self.router = Router(
            reactor, lambda: store.current, lambda: self._registry, self.pool, http, self.usage
        )

    @property
    def config(self) -> Config:
        return self.store.current

    @property
    def registry(self) -> Any:
        return self._registry

    def _build_registry(self, config: Config) -> Any:
        from cliproxy.credentials.from_config import credentials_from_config
        from cliproxy.registry import ModelRegistry

        creds = credentials_from_config(config)
        creds += self.authdir.credentials(config.oauth_endpoints)
        return ModelRegistry.from_config(config, creds)

    def _accounts_changed(self) -> None:
        self._registry = self._build_registry(self.store.current)
        self.pool.retain(c.id for c in self._registry.credentials)

    def _config_changed(self, old: Config, new: Config) -> None:
        self.authdir.scan()  # auth-dir itself may have moved
        registry = self._build_registry(new)
        self._registry = registry
        self.pool.retain(c.id for c in registry.credentials)
        log.info(
            "config reloaded: {n} credential(s), {m} model(s)",
            n=len(registry.credentials),
            m=len(registry.list_models()),
        )

    def model_list(self, family: Family) -> dict[str, Any]:
        from cliproxy.credentials.authdir import usable

        def listable(cred: Any, model: str) -> bool:
            # an account that needs a new login serves nothing until it has one
            return self.pool.listable(cred, model) and usable(cred)

        if family is Family.CLAUDE:
            return self._registry.claude_model_list(listable)
        if family is Family.GEMINI:
            return self._registry.gemini_model_list(listable)
        return self._registry.openai_model_list(listable)

    def gemini_model(self, model_id: str) -> dict[str, Any] | None:
        return self._registry.gemini_model(model_id)


def build_root(app: App) -> Resource:
    root = Root()
    root.putChild(b"", Index())
    root.putChild(b"healthz", Health())
    v1 = Container()
    v1.putChild(b"models", OpenAIModels(app))
    chat = Container()
    chat.putChild(b"completions", ChatCompletions(app))
    v1.putChild(b"chat", chat)
    v1.putChild(b"completions", Completions(app))
    v1.putChild(b"responses", Responses(app))
    messages = Messages(app)
    messages.isLeaf = False
    messages.putChild(b"count_tokens", CountTokens(app))
    v1.putChild(b"messages", messages)
    root.putChild(b"v1", v1)
    v1beta = Container()
    v1beta.putChild(b"models", GeminiModels(app))
    root.putChild(b"v1beta", v1beta)
    install_amp(root, app)
    return root


class Drain(Service):
    """On stop: close idle connections, let in-flight requests finish within the grace
    period, then abort whatever is left."""

    def __init__(self, site: CliproxySite, reactor: Any, grace: Any) -> None:
        self.site = site
        self.reactor = reactor
        self.grace = grace

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        Service.stopService(self)
        site = self.site
        site.draining = True
        for channel in list(site.channels):
            if not channel.requests and channel.transport is not None:
                channel.transport.loseConnection()
        if site.active:
            grace = self.grace()
            log.info(
                "shutting down: waiting up to {grace}s for {n} request(s)",
                grace=grace,
                n=len(site.active),
            )
            idle = site.wait_idle()
            timer = self.reactor.callLater(grace, idle.cancel)
            try:
                yield idle
            except defer.CancelledError:
                log.warn("shutdown grace period over: closing {n} request(s)", n=len(site.active))
                for channel in list(site.channels):
                    if channel.transport is not None:
                        channel.transport.abortConnection()
            else:
                if timer.active():
                    timer.cancel()
        close = getattr(self.site.app.http, "close", None)
        if close is not None:
            yield close()


def build_service(config: Config, endpoint: str, reactor: Any) -> MultiService:
    top = MultiService()
    store = ConfigStore(config)
    app = App(reactor, store)
    site = CliproxySite(build_root(app), limits=lambda: store.current.limits, reactor=reactor)
    site.draining = False
    app.site = site
    site.app = app
    listener = StreamServerEndpointService(endpoints.serverFromString(reactor, endpoint), site)
    listener.setName("listener")
    listener.setServiceParent(top)
    Drain(site, reactor, lambda: store.current.shutdown_grace_seconds).setServiceParent(top)
    watcher = ConfigWatcher(store, config.source_path, reactor)
    watcher.setName("config-watcher")
    watcher.setServiceParent(top)
    from cliproxy.credentials.authdir import account_services

    for service in account_services(app.authdir, app.http, reactor, lambda: store.current):
        service.setServiceParent(top)
    top.app = app  # type: ignore[attr-defined]
    top.watcher = watcher  # type: ignore[attr-defined]
    return top
