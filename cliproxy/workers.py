# -*- test-case-name: tests.test_workers -*-
"""`workers: N`: N processes serve one listening socket.

The process twistd starts (the parent) binds the port exactly as with one worker, so a
busy port still ends start-up with one line and exit status 1. It then serves like any
single cliproxy, and starts N-1 more processes that adopt the same listening socket
(`IReactorSocket.adoptStreamPort`, in Twisted since 10.2: the same code works on Debian
12's Twisted 22.4 and the latest). The kernel hands each new connection to whichever
process accepts it first.

Why a shared socket rather than `SO_REUSEPORT`: Twisted's endpoints cannot set that
option, so each worker would have to build its own socket anyway; with one bound socket
the port check, `backlog`, `interface` and TLS settings stay those of the one endpoint
string, and a second cliproxy started by mistake still gets "port in use".

The parent passes SIGHUP on to every worker (each reloads its config itself) and, on
stop, sends SIGTERM to all of them and waits while they drain. A worker whose parent has
gone (its stdin pipe closes) stops too. A worker that dies is started again.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorFDSet,
    IReactorProcess,
    IReactorSocket,
    IReactorTime,
    IReadDescriptor,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cliproxy.config import Config
from cliproxy.service import Daemon, build_service

__all__ = [
    "AdoptedEndpoint",
    "IWorkerReactor",
    "ParentWatch",
    "WorkerPool",
    "worker_command",
]

log = Logger()

#: the descriptor number the listening socket has in a worker
WORKER_FD = 3
#: seconds before a worker that died is started again (doubling while it keeps dying)
RESPAWN_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0)
#: a worker that ran this long before dying starts again after the first delay
STABLE_AFTER = 60.0
#: seconds beyond the shutdown grace a worker may take before it is killed
KILL_MARGIN = 5.0


class IWorkerReactor(IReactorProcess, IReactorTime, IReactorCore):
    """What the parent needs: processes, timers and the reactor's own life (a static
    type only, like `IClientReactor`)."""


def worker_command(
    twistd_options: Mapping[str, object], config_path: str, listen: str | None, count: int
) -> list[str]:
    """The argv of one worker: this Python, twistd in the foreground with the parent's
    log settings, `cliproxy --worker-fd 3`."""
    # SIGHUP is ignored until the worker's config watcher takes it: a reload sent while
    # a worker is still starting must not kill it (it reads the config as it starts)
    run = "import signal; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
    run += "from twisted.scripts.twistd import run; run()"
    argv = [sys.executable, "-c", run]
    argv += ["--nodaemon", "--pidfile="]
    for option in ("logger", "logfile", "prefix"):
        value = twistd_options.get(option)
        if isinstance(value, str) and value:
            argv.append(f"--{option}={value}")
    if twistd_options.get("syslog"):
        argv.append("--syslog")
    argv += ["cliproxy", "--config", os.path.abspath(config_path)]
    if listen:
        argv += ["--listen", listen]
    argv += ["--workers", str(count), "--worker-fd", str(WORKER_FD)]
    return argv


class _Worker(ProcessProtocol):
    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.started = pool.reactor.seconds()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)
        self.pool.ended(self, reason)


class WorkerPool(Service):
    """Starts and stops the extra workers (N-1 of them; the parent is worker 0).

    Args:
        reactor: `IWorkerReactor`.
        count: the number of workers in all.
        command: the argv of one worker.
        port: the parent's listening port (its descriptor is passed to each worker).
        grace: the live `shutdown-grace-seconds` (how long a worker may drain).
        env: the environment of the workers.
    """

    name = "workers"

    def __init__(
        self,
        reactor: IWorkerReactor,
        count: int,
        command: Sequence[str],
        port: Callable[[], IListeningPort | None],
        grace: Callable[[], float],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.reactor = reactor
        self.count = count
        self.command = list(command)
        self._port = port
        self._grace = grace
        env = dict(os.environ if env is None else env)
        env.pop("NOTIFY_SOCKET", None)  # only the parent talks to systemd
        self.env = env
        self.workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}

    def startService(self) -> None:
        Service.startService(self)
        for number in range(1, self.count):
            self._spawn(number)

    def _spawn(self, number: int) -> None:
        if not self.running:
            return
        port = self._port()
        fileno = getattr(port, "fileno", None)
        if fileno is None:
            log.error("workers: the listening port has no descriptor to share; serving alone")
            return
        worker = _Worker(self, number)
        self.reactor.spawnProcess(
            worker,
            self.command[0],
            self.command,
            env=self.env,
            childFDs={0: "w", 1: 1, 2: 2, WORKER_FD: fileno()},
        )
        self.workers[number] = worker
        log.info("worker {number} started", number=number)

    def ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.number) is worker:
            del self.workers[worker.number]
        if not self.running:
            return
        ran = self.reactor.seconds() - worker.started
        failures = 0 if ran >= STABLE_AFTER else self._failures.get(worker.number, 0)
        delay = RESPAWN_DELAYS[min(failures, len(RESPAWN_DELAYS) - 1)]
        self._failures[worker.number] = failures + 1
        log.error(
            "worker {number} ended ({why}); starting it again in {delay:g}s",
            number=worker.number,
            why=reason.getErrorMessage(),
            delay=delay,
        )
        self.reactor.callLater(delay, self._spawn, worker.number)

    def signal(self, signum: int) -> None:
        """Send `signum` to every worker."""
        for worker in list(self.workers.values()):
            if worker.transport is not None and worker.transport.pid is not None:
                worker.transport.signalProcess(signum)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        workers = list(self.workers.values())
        if not workers:
            return defer.succeed(None)
        self.signal(signal.SIGTERM)
        timer = self.reactor.callLater(
            self._grace() + KILL_MARGIN, self.signal, getattr(signal, "SIGKILL", signal.SIGTERM)
        )
        done = defer.gatherResults([w.ended for w in workers])

        def finished(_: object) -> None:
            if timer.active():
                timer.cancel()

        return done.addCallback(finished)


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """Listens on a socket the parent bound (descriptor `fd`), optionally through TLS."""

    def __init__(
        self,
        reactor: IReactorSocket,
        fd: int,
        wrap: Callable[[IProtocolFactory], IProtocolFactory] | None = None,
    ) -> None:
        self.reactor = reactor
        self.fd = fd
        self.wrap = wrap

    def listen(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IListeningPort]:
        try:
            probe = socket.socket(fileno=self.fd)
            family = probe.family
            probe.detach()
            factory = protocolFactory if self.wrap is None else self.wrap(protocolFactory)
            # typed as taking a ServerFactory; any IProtocolFactory works (TLS's does not
            # derive from ServerFactory)
            port = self.reactor.adoptStreamPort(self.fd, family, cast(Any, factory))
            os.close(self.fd)  # adoptStreamPort took its own copy
        except OSError as e:
            return defer.fail(e)
        return defer.succeed(port)


@implementer(IReadDescriptor)
class _StdinReader:
    """Reads the pipe from the parent; end of file means the parent has gone."""

    def __init__(self, gone: Callable[[], None]) -> None:
        self._gone = gone

    def fileno(self) -> int:
        return 0

    def logPrefix(self) -> str:
        return "parent-watch"

    def doRead(self) -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone()

    def connectionLost(self, reason: Failure) -> None:
        pass


class ParentWatch(Service):
    """In a worker: stop when the parent has gone (its pipe on stdin closed)."""

    name = "parent-watch"

    def __init__(self, reactor: IReactorCore, fds: IReactorFDSet) -> None:
        self.reactor = reactor
        self.fds = fds
        self._reader: _StdinReader | None = None

    def startService(self) -> None:
        Service.startService(self)
        os.set_blocking(0, False)
        self._reader = _StdinReader(self._gone)
        self.fds.addReader(self._reader)

    def stopService(self) -> None:
        Service.stopService(self)
        reader, self._reader = self._reader, None
        if reader is not None:
            self.fds.removeReader(reader)

    def _gone(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        self.fds.removeReader(reader)
        log.warn("worker {pid}: the parent process has gone; stopping", pid=os.getpid())
        self.reactor.stop()


# -- wiring, called from `cliproxy.tap.makeService` ---------------------------------------------


def add_workers(
    daemon: Daemon, config: Config, options: Mapping[str, Any], where: str, reactor: Any
) -> None:
    """Start `config.workers - 1` more workers beside the parent's service tree; SIGHUP to
    the parent reaches each of them."""
    if where.startswith("ssl:") and (options.get("listen") or config.listen):
        raise SystemExit(
            "cliproxy: with more than one worker, TLS comes from the config's `tls` "
            "section; an ssl: endpoint in `listen`/--listen is not supported"
        )
    parent = getattr(options, "parent", None)
    command = worker_command(
        parent if parent is not None else {},
        options["config"],
        options.get("listen"),
        config.workers,
    )
    pool = WorkerPool(
        reactor,
        config.workers,
        command,
        lambda: daemon.listener.port,
        lambda: daemon.app.config.shutdown_grace_seconds,
    )
    daemon.service.addService(pool)
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return
    previous = signal.getsignal(sighup)

    def on_sighup(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        reactor.callFromThread(pool.signal, sighup)

    signal.signal(sighup, on_sighup)


def worker_service(config: Config, where: str, fd: int, reactor: Any) -> MultiService:
    """The service tree of a worker: the parent's listening socket (descriptor `fd`),
    TLS from the config when the parent listens with TLS."""
    wrap = _tls_wrapper(config) if where.startswith("ssl:") else None
    endpoint = AdoptedEndpoint(reactor, fd, wrap)
    daemon = build_service(config, endpoint, reactor, where=f"{where} (worker {os.getpid()})")
    daemon.watcher.install_sighup(reactor)
    daemon.service.addService(ParentWatch(reactor, reactor))
    log.info("cliproxy worker {pid} serving {endpoint}", pid=os.getpid(), endpoint=where)
    return daemon.service


def _tls_wrapper(config: Config) -> Callable[[IProtocolFactory], IProtocolFactory]:
    from twisted.internet import ssl
    from twisted.protocols.tls import TLSMemoryBIOFactory

    try:
        with open(config.tls.cert, "rb") as cert, open(config.tls.key, "rb") as key:
            pem = cert.read() + b"\n" + key.read()
        options = ssl.PrivateCertificate.loadPEM(pem).options()
    except (OSError, ValueError) as e:
        raise SystemExit(f"cliproxy: cannot read the TLS files: {e}")

    def wrap(factory: IProtocolFactory) -> IProtocolFactory:
        return TLSMemoryBIOFactory(options, False, factory)

    return wrap
