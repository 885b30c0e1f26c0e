# -*- test-case-name: tests.config.test_config_watcher -*-
"""The live config: a snapshot store, and a service that reloads config.yaml when it changes.

A bad edit never replaces a good config: the error is logged and the old snapshot stays.
Listener settings (host, port, tls, listen) only take effect on restart, and the log says so.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from typing import cast

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ._parse import parse_bytes, read_file
from .errors import ConfigError
from .model import Config

Subscriber = Callable[[Config, Config], object]
_SETTLE_NS = 2_000_000_000


class ConfigStore:
    """Holds the current Config snapshot and tells subscribers when it is replaced."""

    log = Logger()

    def __init__(self, initial: Config):
        self._current = initial
        self._subscribers: list[Subscriber] = []

    @property
    def current(self) -> Config:
        """The snapshot to use now. Read it per request; do not keep it."""
        return self._current

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(old, new)` after each replace; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def replace(self, new: Config) -> None:
        """Swap in `new`, then notify subscribers; one failing subscriber does not stop the rest."""
        old, self._current = self._current, new
        for callback in list(self._subscribers):
            try:
                callback(old, new)
            except Exception:
                self.log.failure("config subscriber {callback!r} failed", callback=callback)


def _listener(config: Config) -> tuple[str, bool, str, str]:
    return (config.listen_endpoint(), config.tls.enable, config.tls.cert, config.tls.key)


class ConfigWatcher(Service):
    """Polls the config file and reloads it into `store` when its content changes.

    A cheap stat (mtime, size) runs every `interval` seconds; the file is read and hashed only
    when the stat moved, and parsed only when the SHA-256 of the content differs.
    """

    log = Logger()

    def __init__(self, store: ConfigStore, path: str, reactor: IReactorTime, interval: float = 1.0):
        self.store = store
        self.path = path
        self.reactor = reactor
        self.interval = interval
        self._loop: LoopingCall | None = None
        self._stat: tuple[int, int] | None = None
        self._digest: str | None = None
        self._missing_logged = False
        self._remember_current_file()

    # -- service ---------------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        if not self.path:
            return  # a config built from text (tests, tools) has no file to watch
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        Service.stopService(self)

    def install_sighup(self, reactor: IReactorFromThreads | None = None) -> bool:
        """Make SIGHUP call `reload()` in the reactor thread; False where there is no SIGHUP."""
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None:
            return False
        # The watcher's own reactor is the real one in production, which runs threads too.
        threads = reactor if reactor is not None else cast(IReactorFromThreads, self.reactor)

        def on_sighup(signum: int, frame: object) -> None:
            threads.callFromThread(self.reload)

        signal.signal(sighup, on_sighup)
        return True

    # -- checks ----------------------------------------------------------------------------

    def _stat_now(self) -> tuple[int, int] | None:
        try:
            st = os.stat(os.path.expanduser(self.path))
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _remember_current_file(self) -> None:
        # The store's snapshot came from this file; remember it so the first poll is quiet.
        self._stat = self._stat_now()
        try:
            self._digest = hashlib.sha256(read_file(self.path)).hexdigest()
        except ConfigError:
            self._digest = None

    def _tick(self) -> None:
        # An unexpected error must not stop the LoopingCall for good.
        try:
            self.poll()
        except Exception:
            self.log.failure("config watcher check failed; keeping the current config")

    def poll(self) -> bool:
        """One timer tick: reload if the file's content changed. Returns True if swapped."""
        stat = self._stat_now()
        if stat is None:
            if not self._missing_logged:
                self.log.warn(
                    "config file {path} is missing; keeping the current config", path=self.path
                )
                self._missing_logged = True
            return False
        self._missing_logged = False
        # mtime has coarse granularity: a same-size rewrite within one tick keeps the same
        # stat, so a recently modified file is hashed on every tick until it settles.
        settled = time.time_ns() - stat[0] > _SETTLE_NS
        if stat == self._stat and settled:
            return False
        self._stat = stat
        return self._load(announce_unchanged=False)

    def reload(self) -> bool:
        """Re-read the file now (SIGHUP). Returns True if a new config was swapped in.

        Content already loaded (or already refused) by the timer is not applied, or
        complained about, a second time: each edit gives one "reloaded" or one error line.
        """
        self._stat = self._stat_now()
        return self._load(announce_unchanged=True)

    # -- loading ---------------------------------------------------------------------------

    def _failed(self, error: ConfigError) -> None:
        self.log.error(
            "config reload failed, keeping the current config: {error}", error=str(error)
        )

    def _load(self, announce_unchanged: bool) -> bool:
        try:
            data = read_file(self.path)
        except ConfigError as e:
            self.log.error(
                "config reload failed, keeping the current config: {error}", error=str(e)
            )
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            if announce_unchanged:
                self.log.info("config {path} unchanged since it was last read", path=self.path)
            return False
        if not data.strip():
            # Editors and tools that truncate before writing leave an empty file for a moment;
            # its digest is not kept, so the same content written back is no reload at all.
            self.log.warn("config file {path} is empty; keeping the current config", path=self.path)
            return False
        self._digest = digest
        try:
            new = parse_bytes(data, self.path)
        except ConfigError as e:
            self.log.error(
                "config reload failed, keeping the current config: {error}", error=str(e)
            )
            return False
        old = self.store.current
        for warning in new.warnings:
            self.log.warn("config: {warning}", warning=warning)
        if _listener(old) != _listener(new):
            self.log.warn(
                "listen address changed ({old} -> {new}); restart cliproxy to apply it",
                old=old.listen_endpoint(),
                new=new.listen_endpoint(),
            )
        self.store.replace(new)
        self.log.info("config reloaded from {path}", path=self.path)
        return True
