# -*- test-case-name: tests.store.test_shared -*-
"""`NotifyListener`: LISTEN on a dedicated psycopg2 connection, read on the reactor.

The connection is opened (and LISTEN sent) on a thread; its socket is then an
`IReadDescriptor` in the reactor, and `doRead` only calls `conn.poll()`, which reads what
the socket holds without waiting. One listener serves every channel of the store
(`SharedStore.listen`). A lost connection is retried with backoff, and
`on_connected` runs after each (re)connection so the caller can catch up on what it missed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions
from twisted.internet import threads
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFDSet,
    IReactorThreads,
    IReactorTime,
    IReadDescriptor,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["CONNECT_TIMEOUT", "IStoreReactor", "NotifyListener"]


class IStoreReactor(IReactorFDSet, IReactorThreads, IReactorTime):
    """What the store needs of the reactor: threads for the pool, fds for LISTEN, timers."""


#: seconds to wait for the server when connecting (start-up, the pool, the listener)
CONNECT_TIMEOUT = 5
#: seconds between reconnection attempts: doubling from the first to the last
RETRY = (0.5, 10.0)


@implementer(IReadDescriptor)
class NotifyListener:
    """Calls `channels[name](payload)` for each NOTIFY on one of `channels`; every
    `on_connected` after each (re)connection."""

    log = Logger()

    def __init__(
        self,
        dsn: str,
        reactor: IStoreReactor,
    ) -> None:
        self._dsn = dsn
        self._reactor = reactor
        self._channels: dict[str, Callable[[str], None]] = {}
        self._on_connected: list[Callable[[], object]] = []
        self._conn: Any = None
        #: a duplicate of the socket's descriptor: psycopg2 closes its own when the
        #: connection breaks, and the reactor must still be able to forget this one
        self._fd = -1
        self._running = False
        self._delay = RETRY[0]
        self._retry: IDelayedCall | None = None

    def listen(
        self, channel: str, on_notify: Callable[[str], None], on_connected: Callable[[], object]
    ) -> None:
        """Add a channel (before `start`)."""
        self._channels[channel] = on_notify
        self._on_connected.append(on_connected)

    def start(self) -> None:
        self._running = True
        self._connect()

    def stop(self) -> None:
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._drop()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _open(self) -> Any:  # on a thread
        conn = psycopg2.connect(self._dsn, connect_timeout=CONNECT_TIMEOUT)
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cur:
            for channel in self._channels:
                cur.execute(f"LISTEN {channel}")
        return conn

    def _connect(self) -> None:
        self._retry = None
        d = threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._open)
        d.addCallbacks(self._opened, self._failed)

    def _opened(self, conn: Any) -> None:
        if not self._running:
            conn.close()
            return
        if self._delay > RETRY[0]:
            self.log.info("store: listening for changes again")
        self._conn = conn
        self._fd = os.dup(conn.fileno())
        self._delay = RETRY[0]
        self._reactor.addReader(self)
        for connected in self._on_connected:
            connected()

    def _failed(self, failure: Failure) -> None:
        if not self._running:
            return
        self.log.warn(
            "store: cannot listen for changes ({error}); retrying in {delay:g}s",
            error=(failure.getErrorMessage().strip().splitlines() or [""])[0],
            delay=self._delay,
        )
        self._retry = self._reactor.callLater(self._delay, self._connect)
        self._delay = min(self._delay * 2, RETRY[1])

    def _drop(self) -> None:
        if self._conn is not None:
            self._reactor.removeReader(self)
            os.close(self._fd)
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None
            self._fd = -1

    # -- IReadDescriptor -------------------------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "store-listener"

    def doRead(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.poll()
        except psycopg2.Error as e:
            self._lost(str(e))
            return
        while conn.notifies:
            note = conn.notifies.pop(0)
            heard = self._channels.get(note.channel)
            if heard is None:
                continue
            try:
                heard(note.payload)
            except Exception:
                self.log.failure("store: a change notification could not be applied")

    def connectionLost(self, reason: Failure) -> None:
        if self._conn is not None:
            self._lost(reason.getErrorMessage())

    def _lost(self, why: str) -> None:
        self._drop()
        if self._running:
            self._failed(Failure(ConnectionError(why or "connection lost")))
