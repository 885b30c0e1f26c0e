# -*- test-case-name: tests.oauth.test_refresh -*-
"""Background refresh: tokens renewed ahead of expiry, by each provider's lead (core.md §3.6).

Claude tokens are renewed 4 hours before they expire and Codex tokens 5 days before;
Gemini CLI tokens only when a request finds them expired (no background lead). A
file's `refresh_interval_seconds` forces a period instead. After a failure the account
waits 5 minutes; an account that needs a new login is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.holder import NeedsLogin, RefreshFailed, TokenHolder

__all__ = ["RefreshService"]

#: seconds between checks for due accounts
CHECK_INTERVAL = 30.0
#: after a failed background refresh
RETRY_AFTER_FAILURE = 300.0
#: a refresh that succeeded but left the account still due waits at least this long
RETRY_STILL_DUE = 30.0
DEFAULT_WORKERS = 16


class RefreshService(Service):
    """Refreshes due accounts of an `AuthDir`, at most `workers()` at a time.

    Args:
        holders: returns the live token holders (`AuthDir.holders`).
        http: the HTTP client for token endpoints.
        clock: `IReactorTime`.
        proxy_for: the effective proxy of a holder's account.
        workers: the live `auth-auto-refresh-workers`.
        interval: seconds between checks.
    """

    log = Logger()

    def __init__(
        self,
        holders: Callable[[], list[TokenHolder]],
        http: HTTPRequester,
        clock: IReactorTime,
        *,
        proxy_for: Callable[[TokenHolder], str | None] = lambda h: None,
        workers: Callable[[], int] = lambda: DEFAULT_WORKERS,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._holders = holders
        self.http = http
        self.clock = clock
        self._proxy_for = proxy_for
        self._workers = workers
        self.interval = interval
        self._loop: LoopingCall | None = None
        self._retry_at: dict[int, float] = {}
        self._running: set[int] = set()

    def startService(self) -> None:
        # Service's own methods are unannotated; called by name so mypy's
        # untyped_calls_exclude for twisted applies (it does not see through super())
        Service.startService(self)
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        Service.stopService(self)

    def due(self) -> list[TokenHolder]:
        """Accounts whose background refresh is due now."""
        now = self.clock.seconds()
        out = []
        for holder in self._holders():
            if holder.needs_login or holder.refreshing or id(holder) in self._running:
                continue
            if holder.record.get("disabled") is True:
                continue
            due = holder.due_at()
            if due is None or due > now:
                continue
            if now < max(holder.blocked_until(), self._retry_at.get(id(holder), 0.0)):
                continue
            out.append(holder)
        return out

    def check(self) -> list[defer.Deferred[None]]:
        """Start refreshes for due accounts (within the worker limit); their Deferreds."""
        try:
            limit = max(1, int(self._workers()))
        except (TypeError, ValueError):
            limit = DEFAULT_WORKERS
        live = {id(h) for h in self._holders()}
        for key in [k for k in self._retry_at if k not in live]:
            del self._retry_at[key]
        started = []
        for holder in self.due():
            if len(self._running) >= limit:
                break
            started.append(self._refresh(holder))
        return started

    def _refresh(self, holder: TokenHolder) -> defer.Deferred[None]:
        key = id(holder)
        self._running.add(key)
        self.log.info("{name}: refreshing the token ahead of expiry", name=holder.name)
        d = holder.refresh(self.http, self._proxy_for(holder))

        def done(result: str | Failure) -> None:
            self._running.discard(key)
            now = self.clock.seconds()
            if isinstance(result, Failure):
                if not result.check(NeedsLogin, RefreshFailed):
                    self.log.failure("{name}: unexpected refresh error", result, name=holder.name)
                self._retry_at[key] = now + RETRY_AFTER_FAILURE
                return None
            due = holder.due_at()
            if due is not None and due <= now:
                # the provider hands out tokens shorter than our lead: do not refresh
                # every few seconds, but again halfway to the new expiry
                expiry = holder.expiry
                half = (expiry - now) / 2.0 if expiry is not None else 0.0
                self._retry_at[key] = now + max(RETRY_STILL_DUE, half)
            else:
                self._retry_at.pop(key, None)
            return None

        return d.addBoth(done)
