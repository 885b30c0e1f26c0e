# -*- test-case-name: tests.store.test_shared -*-
"""`NotifyListener`: LISTEN on a dedicated psycopg2 connection, read on the reactor.

The connection is opened (and LISTEN sent) on a thread; its socket is then an
`IReadDescriptor` in the reactor, and `doRead` only calls `conn.poll()`, which reads what
the socket holds without waiting. A lost connection is retried with backoff, and
`on_connected` runs after each (re)connection so the caller can catch up on what it missed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions
from twisted.internet import threads
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cliproxy.store.shared import IStoreReactor

__all__ = ["NotifyListener"]

#: seconds between reconnection attempts: doubling from the first to the last
RETRY = (0.5, 10.0)


@implementer(IReadDescriptor)
class NotifyListener:
    """Calls `on_notify(payload)` for each NOTIFY on `channel`."""

    log = Logger()

    def __init__(
        self,
        dsn: str,
        reactor: IStoreReactor,
        channel: str,
        on_notify: Callable[[str], None],
        on_connected: Callable[[], object],
    ) -> None:
        self._dsn = dsn
        self._reactor = reactor
        self._channel = channel
        self._on_notify = on_notify
        self._on_connected = on_connected
        self._conn: Any = None
        self._running = False
        self._delay = RETRY[0]
        self._retry: IDelayedCall | None = None

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
        conn = psycopg2.connect(self._dsn, connect_timeout=5)
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {self._channel}")
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
        self._delay = RETRY[0]
        self._reactor.addReader(self)
        self._on_connected()

    def _failed(self, failure: Failure) -> None:
        if not self._running:
            return
        self.log.warn(
            "store: cannot listen for changes ({error}); retrying in {delay:g}s",
            error=failure.getErrorMessage().strip().splitlines()[0] if failure.value else "",
            delay=self._delay,
        )
        self._retry = self._reactor.callLater(self._delay, self._connect)
        self._delay = min(self._delay * 2, RETRY[1])

    def _drop(self) -> None:
        if self._conn is not None:
            self._reactor.removeReader(self)
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None

    # -- IReadDescriptor -------------------------------------------------------------------

    def fileno(self) -> int:
        return int(self._conn.fileno()) if self._conn is not None else -1

    def logPrefix(self) -> str:
        return "store-listener"

    def doRead(self) -> None:
        conn = self._conn
        try:
            conn.poll()
        except psycopg2.Error as e:
            self._lost(str(e))
            return
        while conn.notifies:
            note = conn.notifies.pop(0)
            try:
                self._on_notify(note.payload)
            except Exception:
                self.log.failure("store: a change notification could not be applied")

    def connectionLost(self, reason: Failure) -> None:
        self._lost(reason.getErrorMessage())

    def _lost(self, why: str) -> None:
        self._drop()
        if self._running:
            self._failed(Failure(ConnectionError(why or "connection lost")))
