# -*- test-case-name: tests.oauth.test_holder -*-
"""`TokenHolder`: one account's live token, refreshed once however many requests wait.

The `Credential` record is frozen and rebuilt on every reload; the token is not. Each
auth file gets one `TokenHolder` (kept across reloads while the file stays), which the
credential carries in its `options` under `"oauth"`.

Rules (core.md §2.2, §2.5, §2.6, §3.6):
* A request gets the current token unless it expires within the provider's margin;
  then it waits for a refresh.
* One refresh at a time per account: every caller that arrives meanwhile waits on it.
  A caller that gives up (client gone) does not stop the refresh for the others.
* A refresh is bounded in time, retried twice on network trouble or 5xx (after 1 s, 2 s),
  and after a failure no new attempt starts for a while (no hammering).
* `invalid_grant` / `refresh_token_reused` (or a 401) mean the refresh token is dead:
  the holder is marked "needs-login" and never calls the token endpoint again until
  its file changes (a new login).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.config.model import OAuthEndpoints
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.providers import ProviderSpec
from cliproxy.credentials.oauth.records import (
    access_token_of,
    expiry_of,
    refresh_token_of,
    refreshed_record,
)
from cliproxy.credentials.oauth.refresh_rules import refresh_headers, refresh_url
from cliproxy.credentials.oauth.tokens import OAuthError, token_request
from cliproxy.credentials.store import parse_time, record_last_refresh
from cliproxy.observe.signals import token_refreshed

__all__ = ["NeedsLogin", "RefreshFailed", "TokenHolder"]

#: seconds one whole refresh (all attempts) may take
REFRESH_DEADLINE = 60.0
#: seconds one token request may wait for response headers
REQUEST_TIMEOUT = 20.0
#: waits between attempts of one refresh
RETRY_DELAYS = (1.0, 2.0)
#: after a failed refresh, no new attempt for this long (requests fail fast meanwhile)
FAILURE_BACKOFF = 30.0
#: a 429 from the token endpoint blocks refreshes for Retry-After, clamped to this range
RATE_LIMIT_BLOCK = (5.0, 300.0)

OK = "ok"
NEEDS_LOGIN = "needs-login"
REFRESH_FAILED = "refresh-failed"
#: refreshed, but the new token is only in memory: the file still holds a revoked one
UNSAVED = "unsaved"
#: seconds between attempts to save a refreshed token that could not be written
SAVE_RETRY = 30.0


class NeedsLogin(Exception):
    """The account's refresh token is dead (or missing): run `cliproxy login <provider>`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RefreshFailed(Exception):
    """A refresh did not work this time (network, 5xx, 429, timeout); it may later."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TokenHolder:
    """The mutable token state of one auth file.

    Args:
        spec: the provider.
        record: the file's JSON object.
        name: the file name (the credential id), for logs.
        clock: `IReactorTime`: expiry checks, retry waits and the refresh deadline.
        endpoints: the live `oauth-endpoints` (token URL).
        persist: called with the holder after a successful refresh, to write the file.
        reread: returns the file's record as it is on disk now (None if unreadable); a
            dead refresh token is first checked against it, since another program (or
            CLIProxyAPI itself) may have refreshed the same file.
        lock: with several workers, holds the file's lock (Deferred of its release),
            having taken into the holder whatever another worker wrote meanwhile.
    """

    log = Logger()

    def __init__(
        self,
        spec: ProviderSpec,
        record: dict[str, Any],
        *,
        name: str,
        clock: IReactorTime,
        endpoints: Callable[[], OAuthEndpoints],
        persist: Callable[[TokenHolder], object] | None = None,
        reread: Callable[[], dict[str, Any] | None] | None = None,
        lock: Callable[[], defer.Deferred[Callable[[], None]]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.clock = clock
        self._endpoints = endpoints
        self._persist = persist
        self._reread = reread
        self._lock = lock
        self._record: dict[str, Any] = dict(record)
        self.status = OK
        self.last_error = ""
        self.refreshes = 0
        self.last_refresh: float | None = record_last_refresh(record)
        self._not_before = 0.0
        self._inflight: defer.Deferred[str] | None = None
        self._waiters: list[defer.Deferred[str]] = []
        #: Gemini CLI: the project found by loadCodeAssist when the file names none
        self.discovered_project = ""
        self._save_call: Any = None

    # -- reading -------------------------------------------------------------------------

    @property
    def record(self) -> dict[str, Any]:
        """The current record (do not modify it)."""
        return self._record

    @property
    def access_token(self) -> str:
        return access_token_of(self._record)

    @property
    def refresh_token(self) -> str:
        return refresh_token_of(self._record)

    @property
    def expiry(self) -> float | None:
        return expiry_of(self._record)

    @property
    def needs_login(self) -> bool:
        return self.status == NEEDS_LOGIN

    @property
    def refreshing(self) -> bool:
        return self._inflight is not None

    @property
    def waiting(self) -> int:
        """How many callers wait for the refresh under way."""
        return len(self._waiters)

    def fresh(self, margin: float | None = None) -> bool:
        """The access token is usable for at least `margin` more seconds."""
        if not self.access_token:
            return False
        expiry = self.expiry
        if expiry is None:
            return True  # no expiry known: use it until the provider says 401
        return expiry - (self.spec.margin if margin is None else margin) > self.clock.seconds()

    def due_at(self) -> float | None:
        """When the background refresher should refresh (None: never in the background)."""
        interval = parse_time(self._record.get("refresh_interval_seconds"))
        if interval:
            return (self.last_refresh or 0.0) + interval
        lead = self.spec.refresh_lead
        if lead is None or not self.refresh_token:
            return None
        expiry = self.expiry
        if expiry is not None:
            return expiry - lead
        if self.last_refresh is not None:
            return self.last_refresh + lead
        return self.clock.seconds()

    def blocked_until(self) -> float:
        """No refresh attempt starts before this time (after a failure or a 429)."""
        return self._not_before

    # -- changing ------------------------------------------------------------------------

    def replace_record(self, record: dict[str, Any]) -> None:
        """The file changed on disk: take its content; a new refresh token revives the holder."""
        old_rt = self.refresh_token
        self._record = dict(record)
        self.last_refresh = record_last_refresh(record) or self.last_refresh
        if self.refresh_token != old_rt or self.fresh(0):
            if self.status != OK:
                self.log.info("{name}: new tokens on disk; using them", name=self.name)
            self.status = OK
            self.last_error = ""
            self._not_before = 0.0

    def _dead(self, message: str) -> NeedsLogin:
        self.status = NEEDS_LOGIN
        self.last_error = message
        command = f"cliproxy login {self.spec.name}"
        self.log.error(
            "{name} needs a new login ({error}); run `{command}`",
            name=self.name,
            error=message,
            command=command,
        )
        return NeedsLogin(f"account {self.name} needs a new login: run `{command}` ({message})")

    # -- getting a token -----------------------------------------------------------------

    async def token(self, http: HTTPRequester, proxy_url: str | None = None) -> str:
        """A usable access token, refreshing first when it is (nearly) expired.

        Raises:
            NeedsLogin: the account must log in again.
            RefreshFailed: the token is expired and refreshing failed.
        """
        if self.status == NEEDS_LOGIN:
            raise NeedsLogin(
                f"account {self.name} needs a new login: run `cliproxy login {self.spec.name}`"
                f" ({self.last_error})"
            )
        if self.fresh():
            return self.access_token
        if not self.refresh_token:
            if self.fresh(0):
                return self.access_token
            raise self._dead("the access token expired and the file has no refresh token")
        try:
            return await self.refresh(http, proxy_url, stale=self.access_token)
        except RefreshFailed:
            if self.fresh(0):
                return self.access_token  # within the margin, but not expired yet
            raise

    def refresh(
        self, http: HTTPRequester, proxy_url: str | None = None, *, stale: str | None = None
    ) -> defer.Deferred[str]:
        """Refresh now (or join the refresh under way); Deferred[str] of the new token.

        Args:
            http: the HTTP client for the token endpoint.
            proxy_url: the account's effective proxy.
            stale: the token the caller found wanting (e.g. it got a 401). If the holder
                already has another, usable one (someone refreshed meanwhile), that one
                is returned without a new refresh.
        """
        if self.status == NEEDS_LOGIN:
            return defer.fail(
                NeedsLogin(
                    f"account {self.name} needs a new login: "
                    f"run `cliproxy login {self.spec.name}` ({self.last_error})"
                )
            )
        if stale is not None and self.access_token != stale and self.fresh(0):
            return defer.succeed(self.access_token)
        waiter: defer.Deferred[str] = defer.Deferred(self._forget_waiter)
        self._waiters.append(waiter)
        if self._inflight is None:
            now = self.clock.seconds()
            if now < self._not_before:
                self._waiters.remove(waiter)
                return defer.fail(
                    RefreshFailed(
                        f"token refresh for {self.name} is paused for "
                        f"{self._not_before - now:.0f}s after: {self.last_error}"
                    )
                )
            self._start(http, proxy_url)
        return waiter

    def _forget_waiter(self, waiter: defer.Deferred[str]) -> None:
        # this caller left; the refresh goes on for the others
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _start(self, http: HTTPRequester, proxy_url: str | None) -> None:
        work = defer.ensureDeferred(self._refresh_locked(http, proxy_url))
        self._inflight = work
        timer = self.clock.callLater(REFRESH_DEADLINE, work.cancel)

        def settle(result: str | Failure) -> None:
            if timer.active():
                timer.cancel()
            self._inflight = None
            token_refreshed(self.spec.name, not isinstance(result, Failure))  # /metrics
            if isinstance(result, Failure) and result.check(defer.CancelledError):
                self._failed(f"no answer within {REFRESH_DEADLINE:g}s", FAILURE_BACKOFF)
                result = Failure(RefreshFailed(f"token refresh for {self.name} took too long"))
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                if isinstance(result, Failure):
                    w.errback(result)
                else:
                    w.callback(result)
            if isinstance(result, Failure):
                result.trap(NeedsLogin, RefreshFailed)  # reported to the waiters and the log

        work.addBoth(settle)

    def _failed(self, message: str, backoff: float) -> None:
        self.status = REFRESH_FAILED
        self.last_error = message
        self._not_before = max(self._not_before, self.clock.seconds() + backoff)
        self.log.warn(
            "{name}: token refresh failed ({error}); next try in {backoff:.0f}s",
            name=self.name,
            error=message,
            backoff=backoff,
        )

    def _refresh_fields(self) -> dict[str, str]:
        token_map = self._record.get("token")
        token_map = token_map if isinstance(token_map, dict) else {}
        return self.spec.refresh_fields(
            self.refresh_token,
            str(token_map.get("client_id") or ""),
            str(token_map.get("client_secret") or ""),
        )

    async def _refresh_locked(self, http: HTTPRequester, proxy_url: str | None) -> str:
        """`_refresh` under the file's lock when workers share the file: a worker that
        finds another's new token on disk once it holds the lock uses it instead."""
        if self._lock is None:
            return await self._refresh(http, proxy_url)
        before = self.access_token
        release = await self._lock()
        try:
            if self.access_token != before and self.fresh():
                self.log.info("{name}: another worker refreshed the token", name=self.name)
                return self.access_token
            return await self._refresh(http, proxy_url)
        finally:
            release()

    async def _refresh(self, http: HTTPRequester, proxy_url: str | None) -> str:
        used = self.refresh_token
        fields = self._refresh_fields()
        url = refresh_url(self.spec, self._endpoints(), self._record)
        attempt = 0
        took_disk = False
        while True:
            try:
                answer = await token_request(
                    http,
                    url,
                    fields,
                    json_body=self.spec.json_token_body,
                    proxy_url=proxy_url,
                    timeout=REQUEST_TIMEOUT,
                    what=f"token refresh for {self.name}",
                    headers=refresh_headers(self.spec, self._record, self.name),
                )
                break
            except OAuthError as e:
                if e.needs_login:
                    if not took_disk and self._adopt_from_disk(used):
                        if self.fresh(0):
                            return self.access_token
                        # a newer refresh token than ours: one more try with it
                        took_disk, used, fields = True, self.refresh_token, self._refresh_fields()
                        continue
                    raise self._dead(e.message) from None
                if e.status == 429:
                    low, high = RATE_LIMIT_BLOCK
                    block = min(max(e.retry_after or low, low), high)
                    self._failed(e.message, block)
                    raise RefreshFailed(e.message) from None
                if not e.transient or attempt >= len(RETRY_DELAYS):
                    self._failed(e.message, FAILURE_BACKOFF)
                    raise RefreshFailed(e.message) from None
                await task.deferLater(self.clock, RETRY_DELAYS[attempt], lambda: None)
                attempt += 1
        now = self.clock.seconds()
        self._record = refreshed_record(self.spec, self._record, answer, now)
        self.status = OK
        self.last_error = ""
        self.refreshes += 1
        self.last_refresh = now
        self._not_before = 0.0
        expiry = self.expiry
        self.log.info(
            "{name}: token refreshed; valid for {minutes:.0f} min",
            name=self.name,
            minutes=((expiry - now) / 60.0) if expiry else 0.0,
        )
        self._save()
        return self.access_token

    def _save(self) -> None:
        """Write the record; on failure keep retrying every SAVE_RETRY seconds until it is
        written, since the file's refresh token is revoked once the provider rotated it."""
        self._save_call = None
        if self._persist is None:
            return
        try:
            self._persist(self)
        except Exception as e:
            self.status = UNSAVED
            self.last_error = (
                f"the refreshed token could not be saved ({e}); retrying every "
                f"{SAVE_RETRY:g}s: free disk space or fix the auth-dir permissions"
            )
            self.log.error("{name}: {why}", name=self.name, why=self.last_error)
            self._save_call = self.clock.callLater(SAVE_RETRY, self._save)
            return
        if self.status == UNSAVED:
            self.status, self.last_error = OK, ""
            self.log.info("{name}: the refreshed token is saved now", name=self.name)

    def stop_saving(self) -> None:
        """Forget a pending save retry (the credential was removed)."""
        if self._save_call is not None and self._save_call.active():
            self._save_call.cancel()
        self._save_call = None

    def _adopt_from_disk(self, used: str) -> bool:
        """Another program refreshed this file (its refresh token differs): take it."""
        if self._reread is None:
            return False
        try:
            record = self._reread()
        except Exception:
            return False
        if not record or refresh_token_of(record) in ("", used):
            return False
        self._record = dict(record)
        self.log.info("{name}: the file on disk was refreshed elsewhere; using it", name=self.name)
        return True
