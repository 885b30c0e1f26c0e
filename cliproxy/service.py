# -*- test-case-name: tests.test_service -*-
"""Wiring: the App every resource reads from, the Resource tree, and the service tree."""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.web.resource import Resource

from cliproxy.config import Config
from cliproxy.config.watcher import ConfigStore, ConfigWatcher
from cliproxy.formats import Family
from cliproxy.web.http import CliproxySite
from cliproxy.web.models import GeminiModels, OpenAIModels
from cliproxy.web.resources import Container, Health, Index, Root

log = Logger()


class App:
    """What the resources share: the reactor and the live config (and, as rooms land,
    the model registry, the credential pool and the upstream client)."""

    def __init__(self, reactor: Any, store: ConfigStore) -> None:
        self.reactor = reactor
        self.store = store

    @property
    def config(self) -> Config:
        return self.store.current

    def model_list(self, family: Family) -> dict[str, Any]:
        if family is Family.CLAUDE:
            return {"data": [], "has_more": False, "first_id": None, "last_id": None}
        if family is Family.GEMINI:
            return {"models": []}
        return {"object": "list", "data": []}

    def gemini_model(self, model_id: str) -> dict[str, Any] | None:
        return None


def build_root(app: App) -> Resource:
    root = Root()
    root.putChild(b"", Index())
    root.putChild(b"healthz", Health())
    v1 = Container()
    v1.putChild(b"models", OpenAIModels(app))
    root.putChild(b"v1", v1)
    v1beta = Container()
    v1beta.putChild(b"models", GeminiModels(app))
    root.putChild(b"v1beta", v1beta)
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
                log.warn(
                    "shutdown grace period over: closing {n} request(s)", n=len(site.active)
                )
                for channel in list(site.channels):
                    if channel.transport is not None:
                        channel.transport.abortConnection()
            else:
                if timer.active():
                    timer.cancel()


def build_service(config: Config, endpoint: str, reactor: Any) -> MultiService:
    top = MultiService()
    store = ConfigStore(config)
    app = App(reactor, store)
    site = CliproxySite(build_root(app), limits=lambda: store.current.limits, reactor=reactor)
    site.draining = False
    app.site = site
    listener = StreamServerEndpointService(endpoints.serverFromString(reactor, endpoint), site)
    listener.setName("listener")
    listener.setServiceParent(top)
    Drain(site, reactor, lambda: store.current.shutdown_grace_seconds).setServiceParent(top)
    watcher = ConfigWatcher(store, config.source_path, reactor)
    watcher.setName("config-watcher")
    watcher.setServiceParent(top)
    top.app = app  # type: ignore[attr-defined]
    top.watcher = watcher  # type: ignore[attr-defined]
    return top
