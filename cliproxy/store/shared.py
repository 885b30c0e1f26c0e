# -*- test-case-name: tests.store.test_shared -*-
"""`SharedStore`: the running instance's link to the database.

Refresh single-flight across instances: `refresh_lock(name, holder)` takes
`pg_advisory_xact_lock` for the credential in a transaction on a pool thread, reads the
credential's row and hands it to the holder (so an instance that lost the race uses the
winner's token), and keeps the transaction open until the holder releases it. The
refreshed token is written in that same transaction, so the lock is let go only once the
new token is committed: the next instance to take it always reads a current refresh token.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg2
from twisted.application.service import Service
from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.credentials.oauth.holder import RefreshFailed, TokenHolder
from cliproxy.store.listener import CONNECT_TIMEOUT, IStoreReactor, NotifyListener
from cliproxy.store.settings import StoreSettings
from cliproxy.twisted_compat import QuietDBConnection

__all__ = ["IStoreReactor", "Release", "SharedStore", "TOKEN_LOCK"]


#: first key of the two-key advisory lock: "token refresh" (the second is hashtext(id))
TOKEN_LOCK = 0x637072
#: seconds a pool thread waits for the lock, and for the holder to release it
LOCK_WAIT = 75.0
HOLD_LIMIT = 90.0

Release = Callable[[], None]
#: connections in the pool
_POOL_SIZE = 8


#: what a pooled connection the server dropped raises
_DEAD = (psycopg2.OperationalError, psycopg2.InterfaceError, adbapi.ConnectionLost)


class _Hold:
    """One held lock: the pool thread waits on `released`, then writes `content`."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.content: str | None = None


class SharedStore(Service):
    """The connection pool and what goes through it; a Service (listener, closing).

    Args:
        settings: the resolved store settings.
        reactor: the reactor (threads for the pool, the NOTIFY listener's reads).
    """

    log = Logger()
    name = "store"

    def __init__(self, settings: StoreSettings, reactor: IStoreReactor) -> None:
        self.settings = settings
        self.reactor = reactor
        #: tells this instance's own notifications apart
        self.instance = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.pool = adbapi.ConnectionPool(
            "psycopg2",
            settings.dsn,
            cp_min=1,
            cp_max=_POOL_SIZE,
            cp_reconnect=False,
            cp_noisy=False,
            cp_reactor=reactor,
            connect_timeout=CONNECT_TIMEOUT,
        )
        self.pool.connectionFactory = QuietDBConnection
        #: start-up wrote the database's config into the local file: read it again
        self.config_rewritten = False
        self._on_start: list[Callable[[], object]] = []
        self._on_stop: list[Callable[[], object]] = []
        self.listener = NotifyListener(settings.dsn, reactor)
        self.when_running(self.listener.start, self.listener.stop)

    # -- lifecycle -----------------------------------------------------------------------

    def when_running(self, start: Callable[[], object], stop: Callable[[], object]) -> None:
        """Run `start` when the service starts and `stop` when it stops (listeners)."""
        self._on_start.append(start)
        self._on_stop.append(stop)

    def listen(
        self, channel: str, on_notify: Callable[[str], None], on_connected: Callable[[], object]
    ) -> None:
        """Hear NOTIFYs on `channel`; `on_connected` runs after each (re)connection (catch up)."""
        self.listener.listen(channel, on_notify, on_connected)

    def startService(self) -> None:
        Service.startService(self)
        for start in self._on_start:
            start()

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        for stop in self._on_stop:
            stop()
        self.pool.close()
        done: defer.Deferred[None] = defer.succeed(None)
        return done

    # -- statements ----------------------------------------------------------------------

    async def run(self, sql: str, args: object = None) -> None:
        """Run one statement, again on a fresh connection when a pooled one was dead.

        After the database restarted every pooled connection is broken; each failed call
        drops one (`QuietDBConnection`), so a statement is tried up to that many times more.
        """
        for attempt in range(_POOL_SIZE + 1):
            try:
                await self.pool.runOperation(sql, args)
                return
            except _DEAD:
                if attempt == _POOL_SIZE:
                    raise

    async def interact(self, work: Callable[[Any], object]) -> None:
        """`run`, for `work(cursor)` in one transaction on a pool thread."""
        for attempt in range(_POOL_SIZE + 1):
            try:
                await self.pool.runInteraction(work)
                return
            except _DEAD:
                if attempt == _POOL_SIZE:
                    raise

    async def query(self, sql: str, args: object = None) -> list[tuple[Any, ...]]:
        """`run`, for a SELECT: its rows."""
        for attempt in range(_POOL_SIZE + 1):
            try:
                rows: list[tuple[Any, ...]] = await self.pool.runQuery(sql, args)
                return rows
            except _DEAD:
                if attempt == _POOL_SIZE:
                    raise
        return []

    # -- credentials ---------------------------------------------------------------------

    def put_credential(self, name: str, record: dict[str, Any]) -> defer.Deferred[object]:
        """Insert or replace one credential's token JSON."""
        return self.pool.runOperation(  # type: ignore[no-any-return]
            "INSERT INTO cliproxy_auth (id, content) VALUES (%s, %s) ON CONFLICT (id) DO "
            "UPDATE SET content = EXCLUDED.content, updated_at = now()",
            (name, json.dumps(record, indent=2)),
        )

    def refresh_lock(self, name: str, holder: TokenHolder) -> defer.Deferred[Release]:
        """Hold `name`'s refresh lock; the holder has the database's token once it fires.

        Fails with `RefreshFailed` when the database cannot be reached (the holder then
        keeps using its token while it is valid).
        """
        hold = _Hold()
        acquired: defer.Deferred[str | None] = defer.Deferred(lambda _: hold.released.set())

        def locked(cursor: Any) -> None:  # on a pool thread
            cursor.execute("SET LOCAL lock_timeout = %s", (f"{int(LOCK_WAIT * 1000)}ms",))
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (TOKEN_LOCK, name))
            cursor.execute("SELECT content FROM cliproxy_auth WHERE id = %s", (name,))
            row = cursor.fetchone()
            self.reactor.callFromThread(acquired.callback, None if row is None else str(row[0]))
            if not hold.released.wait(HOLD_LIMIT):
                raise TimeoutError(f"refresh lock for {name} held over {HOLD_LIMIT:g}s")
            if hold.content is not None:
                cursor.execute(
                    "INSERT INTO cliproxy_auth (id, content) VALUES (%s, %s) ON CONFLICT (id) "
                    "DO UPDATE SET content = EXCLUDED.content, updated_at = now();"
                    " SELECT pg_notify('cliproxy_auth', %s)",  # on commit: the others re-read
                    (name, hold.content, name),
                )

        def failed(failure: Failure) -> None:
            if not acquired.called:
                self.log.warn(
                    "store: no refresh lock for {name}: {error}",
                    name=name,
                    error=failure.getErrorMessage(),
                )
                acquired.errback(
                    Failure(RefreshFailed(f"the shared store is unreachable ({name})"))
                )
            else:
                self.log.error(
                    "store: could not save the refreshed token of {name}: {error}",
                    name=name,
                    error=failure.getErrorMessage(),
                )

        self.pool.runInteraction(locked).addErrback(failed)

        def held(content: str | None) -> Release:
            before = _adopt(holder, name, content)

            def release() -> None:
                if holder.record != before:
                    hold.content = json.dumps(holder.record, indent=2)
                hold.released.set()

            return release

        return acquired.addCallback(held)


def _adopt(holder: TokenHolder, name: str, content: str | None) -> dict[str, Any] | None:
    """Give the holder the database's record when it differs; the record now held."""
    if content is None:
        return None
    try:
        record = json.loads(content)
    except ValueError:
        SharedStore.log.warn("store: credential {name} is not valid JSON; ignored", name=name)
        return None
    if not isinstance(record, dict):
        return None
    if record != holder.record:
        holder.replace_record(record)
    return record
