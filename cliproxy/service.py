# -*- test-case-name: tests.test_daemon -*-
"""The service tree around an `App`: listener, graceful drain, config and auth-dir watchers,
the token refresher.

The listener binds in `privilegedStartService`, which twistd runs before any service
starts: a port that is taken (or TLS files that cannot be read) stop the daemon there with
one clear line and exit status 1, before the refresher can touch a token file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorTime,
    IStreamServerEndpoint,
    ITCPTransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy import sdnotify
from cliproxy.app import App, build_app
from cliproxy.catalog_refresh import CatalogRefresher
from cliproxy.config import Config, load_config
from cliproxy.config.watcher import ConfigWatcher
from cliproxy.credentials.authdir import account_services
from cliproxy.credentials.net import IClientReactor
from cliproxy.observe.logfiles import AppLogService
from cliproxy.web.errors import finish_with_error
from cliproxy.web.http import CliproxySite
from cliproxy.web.relay import SHUTDOWN_MESSAGE, IStreamEnd
from cliproxy.web.sessions import ILongSession

log = Logger()


def listen_error(failure: Failure, where: str) -> str:
    """One line saying why listening on `where` failed, and what to do."""
    exc = failure.value
    if isinstance(exc, CannotListenError):
        host = exc.interface or "all interfaces"
        socket_error = exc.socketError
        if getattr(socket_error, "errno", None) == errno.EADDRINUSE:
            return (
                f"cliproxy: port {exc.port} on {host} is in use (another cliproxy or "
                "CLIProxyAPI?); stop it, or set another `port` in config.yaml"
            )
        if getattr(socket_error, "errno", None) == errno.EACCES:
            return (
                f"cliproxy: not allowed to listen on port {exc.port} on {host}; "
                "use a port above 1023"
            )
        return f"cliproxy: cannot listen on port {exc.port} on {host}: {socket_error}"
    return f"cliproxy: cannot listen on {where}: {failure.getErrorMessage()}"


class Listener(Service):
    """Listens on `endpoint` with `site`; failing to bind is fatal at start-up."""

    name = "listener"

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        site: CliproxySite,
        where: str,
        on_listening: Callable[[IListeningPort], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.site = site
        self.where = where
        self.on_listening = on_listening
        self.port: IListeningPort | None = None
        self._listening: defer.Deferred[IListeningPort] | None = None

    def privilegedStartService(self) -> None:
        self._listen(fatal=True)
        Service.privilegedStartService(self)

    def startService(self) -> None:
        Service.startService(self)
        if self._listening is None:
            self._listen(fatal=False)

    def _listen(self, fatal: bool) -> None:
        outcome: list[IListeningPort | Failure] = []
        d = self.endpoint.listen(self.site)
        self._listening = d
        d.addBoth(outcome.append)
        if outcome and isinstance(outcome[0], Failure):
            if fatal:
                # twistd prints this line and exits 1; no other service has started
                raise SystemExit(listen_error(outcome[0], self.where))
            log.critical("{message}", message=listen_error(outcome[0], self.where))
            return
        if outcome:
            self._bound(outcome[0])
        else:  # an endpoint that binds later
            d.addCallback(self._bound)

    def _bound(self, port: object) -> None:
        if isinstance(port, Failure):
            log.critical("{message}", message=listen_error(port, self.where))
            return
        assert IListeningPort.providedBy(port)
        self.port = port
        if self.on_listening is not None:
            self.on_listening(port)

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            self._listening = None
            yield port.stopListening()


class Drain(Service):
    """On stop: close idle connections, let in-flight requests finish within the grace
    period, then abort whatever is left; then run `close` (the upstream pool's)."""

    def __init__(
        self,
        site: CliproxySite,
        reactor: IReactorTime,
        grace: Callable[[], float],
        close: Callable[[], defer.Deferred[None]] | None = None,
    ) -> None:
        self.site = site
        self.reactor = reactor
        self.grace = grace
        self.close = close

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        Service.stopService(self)
        site = self.site
        for channel in list(site.channels):
            if not channel.requests and channel.transport is not None:
                channel.transport.loseConnection()
        grace = self.grace()
        deadline = self.reactor.seconds() + grace
        # WebSocket sessions close between turns with 1001; one in a turn finishes it first
        sessions = site.upgraded.going_away()
        if site.active:
            yield self._wait(site, grace)
        if len(site.upgraded):
            yield self._wait_sessions(site, sessions, max(0.0, deadline - self.reactor.seconds()))
        if self.close is not None:
            yield self.close()

    @defer.inlineCallbacks
    def _wait(self, site: CliproxySite, grace: float) -> Any:
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
            for request in list(site.active):
                # open streams end with a terminal error event the client can tell from an end
                ender: IStreamEnd | None = IStreamEnd(request, None)
                if ender is not None:
                    ender.terminate(503, SHUTDOWN_MESSAGE)
                else:  # still waiting for an upstream: a JSON 503 rather than a cut
                    finish_with_error(request, 503, SHUTDOWN_MESSAGE)
            for channel in list(site.channels):
                transport = channel.transport
                if not channel.requests and transport is not None:
                    transport.loseConnection()  # flushes the terminal events written above
                elif ITCPTransport.providedBy(transport) and not _holds_session(channel):
                    transport.abortConnection()
        else:
            if timer.active():
                timer.cancel()

    @defer.inlineCallbacks
    def _wait_sessions(self, site: CliproxySite, closed: defer.Deferred[None], grace: float) -> Any:
        log.info(
            "shutting down: waiting up to {grace}s for {n} websocket session(s) to end a turn",
            grace=round(grace, 1),
            n=len(site.upgraded),
        )
        timer = self.reactor.callLater(grace, closed.cancel)
        try:
            yield closed
        except defer.CancelledError:
            log.warn("shutdown grace period over: closing {n} websocket(s)", n=len(site.upgraded))
            site.upgraded.close_all()
        else:
            if timer.active():
                timer.cancel()


def _holds_session(channel: Any) -> bool:
    """A connection upgraded to a long-lived session (closed by `Sessions`, not cut)."""
    return any(ILongSession(r, None) is not None for r in channel.requests)


def _open_store(config: Config, reactor: IClientReactor) -> Any:
    """The shared store, or None; an unusable one ends start-up with one line (exit 1)."""
    from cliproxy.store.settings import store_settings

    if store_settings(config, os.environ) is None:
        return None
    from cliproxy.store.database import StoreUnavailable, open_store
    from cliproxy.store.shared import IStoreReactor

    try:
        return open_store(config, cast(IStoreReactor, reactor), os.environ)
    except StoreUnavailable as e:
        raise SystemExit(e.message) from None


@dataclass(frozen=True)
class Daemon:
    """The running daemon: its object graph, its service tree and its config watcher."""

    app: App
    service: MultiService
    watcher: ConfigWatcher
    listener: Listener


def build_service(
    config: Config,
    endpoint: IStreamServerEndpoint,
    reactor: IClientReactor,
    *,
    where: str = "",
    on_listening: Callable[[IListeningPort], None] | None = None,
) -> Daemon:
    """The service tree for `config`, listening on `endpoint` (described by `where`)."""
    shared = _open_store(config, reactor)
    if shared is not None and shared.config_rewritten:  # the shared config, local keys kept
        config = load_config(config.source_path)
    app = build_app(config, reactor, shared=shared)
    top = MultiService()
    if shared is not None:
        top.addService(shared)
    # READY=1 to systemd (Type=notify) only once the port is bound; STOPPING=1 on stop
    listener = Listener(sdnotify.ReadyWhenListening(endpoint), app.site, where, on_listening)
    top.addService(listener)
    top.addService(
        Drain(app.site, reactor, lambda: app.config.shutdown_grace_seconds, app.http.close)
    )
    top.addService(sdnotify.StoppingNotifier())
    top.addService(app.router.bodies)  # worker threads for large bodies (limits.large-body-*)
    top.addService(AppLogService(lambda: app.store.current, os.environ))  # logging-to-file
    watcher = ConfigWatcher(app.store, config.source_path, reactor)
    Service.setName(watcher, "config-watcher")
    top.addService(watcher)
    for service in account_services(app.authdir, app.http, reactor, lambda: app.store.current):
        top.addService(service)
    top.addService(CatalogRefresher(app.catalog, app.http, reactor, lambda: app.store.current))
    return Daemon(app, top, watcher, listener)
