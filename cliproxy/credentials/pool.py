# -*- test-case-name: tests.credentials.test_pool -*-
"""The credential pool: which credential serves a request next, and which ones rest.

Pure bookkeeping (core.md §4): no I/O and no reactor. Time comes from an injected
`now()` (seconds, e.g. `reactor.seconds`) and jitter from an injected `random.Random`,
so tests drive both.

State is kept per (credential id, upstream model): a credential that answers 404 for
one model still serves the others. A failure reported with `model=None` benches the
whole credential.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cliproxy.credentials._cooldown import (
    DEFAULT_JITTER,
    STREAK_WINDOW,
    clean_retry_after,
    cooldown_for,
)
from cliproxy.credentials.model import Credential
from cliproxy.credentials.selection import (
    AllCoolingDown,
    NoCredential,
    Resting,
    SelectionError,
    add_credential_hint,
    go_duration,
)

__all__ = [
    "AllCoolingDown",
    "SelectionError",
    "CooldownState",
    "CredentialPool",
    "NoCredential",
    "Routable",
    "add_credential_hint",
    "go_duration",
    "normalize_strategy",
]

ROUND_ROBIN = "round-robin"
FILL_FIRST = "fill-first"
_STRATEGY_NAMES = {
    "round-robin": ROUND_ROBIN,
    "roundrobin": ROUND_ROBIN,
    "rr": ROUND_ROBIN,
    "": ROUND_ROBIN,
    "fill-first": FILL_FIRST,
    "fillfirst": FILL_FIRST,
    "ff": FILL_FIRST,
}

#: Expired entries are kept this long after their cooldown ends so that a credential that
#: keeps hitting 429 climbs the backoff ladder; after that quiet period it starts again at 1 s.
_STATE_RETENTION = 30 * 60.0
#: Prune expired state after this many marks (cheap, keeps memory bounded).
_PRUNE_EVERY = 256
#: Round-robin cursors are dropped wholesale past this many (model, priority) pairs.
_MAX_CURSORS = 4096


class Routable(Protocol):
    """What the pool needs from a routing candidate (the registry's `Candidate`)."""

    @property
    def credential(self) -> Credential: ...

    @property
    def upstream_model(self) -> str: ...


T = TypeVar("T", bound=Routable)
#: anything `_rotate` turns (credential ids, pool members)
_Item = TypeVar("_Item")


def normalize_strategy(name: str | None) -> str:
    """`round-robin` or `fill-first` from any spelling the config accepts (unknown -> rr)."""
    return _STRATEGY_NAMES.get((name or "").strip().lower(), ROUND_ROBIN)


def _provider_list(items: Iterable[Routable]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.credential.provider, None)
    return tuple(seen)


@dataclass(slots=True)
class _State:
    until: float = 0.0
    level: int = 0
    status: int = 0
    quota: bool = False
    suspends: bool = False
    failures: int = 0
    updated: float = 0.0
    #: the provider's reason for a quota bench (upstream/resets.py), "" when it gave none
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CooldownState:
    """A read-only view of one (credential, model) state, for management and logs."""

    credential_id: str
    model: str | None
    until: float
    level: int
    last_status: int
    quota: bool
    failures: int
    suspends: bool = False
    #: the provider's reason for a quota bench, "" when it gave none
    reason: str = ""


class CredentialPool:
    """Orders candidates and remembers which (credential, model) pairs are resting.

    Args:
        now: current time in seconds (e.g. `reactor.seconds`).
        rng: randomness for backoff jitter.
        strategy: returns the live `routing.strategy` (any accepted spelling).
        disable_cooling: returns the live global `disable-cooling`.
        jitter: backoff spread fraction (0.2 = +/- 20 %).
    """

    def __init__(
        self,
        now: Callable[[], float],
        rng: random.Random | None = None,
        *,
        strategy: Callable[[], str | None] = lambda: ROUND_ROBIN,
        disable_cooling: Callable[[], bool] = lambda: False,
        jitter: float = DEFAULT_JITTER,
    ) -> None:
        self._now = now
        self._rng = rng if rng is not None else random.Random()
        self._strategy = strategy
        self._disable_cooling = disable_cooling
        self._jitter = jitter
        self._states: dict[tuple[str, str | None], _State] = {}
        self._cursors: dict[tuple[object, ...], int] = {}
        self._marks = 0
        self._watchers: list[Callable[[CooldownState], None]] = []

    # -- reading ---------------------------------------------------------------------------

    def blocked_until(self, credential: Credential, model: str | None) -> float:
        """When this credential may serve `model` again (<= now means it may now)."""
        until = 0.0
        state = self._states.get((credential.id, model))
        if state is not None:
            until = state.until
        if model is not None:
            whole = self._states.get((credential.id, None))
            if whole is not None and whole.until > until:
                until = whole.until
        return until

    def ready(self, credential: Credential, model: str | None) -> bool:
        """Enabled and not resting for `model`."""
        return not credential.disabled and self.blocked_until(credential, model) <= self._now()

    def listable(self, credential: Credential, model: str | None) -> bool:
        """False while a bad key or a 404 hides the model; a rate limit keeps it listed."""
        if credential.disabled:
            return False
        now = self._now()
        for key in ((credential.id, model), (credential.id, None)):
            state = self._states.get(key)
            if state is not None and state.suspends and state.until > now:
                return False
        return True

    def next_free_time(self, candidates: Iterable[Routable]) -> float | None:
        """The earliest time a resting candidate frees; None if one is ready now (or none)."""
        now = self._now()
        earliest: float | None = None
        for c in candidates:
            if c.credential.disabled:
                continue
            until = self.blocked_until(c.credential, c.upstream_model)
            if until <= now:
                return None
            if earliest is None or until < earliest:
                earliest = until
        return earliest

    def states(self) -> list[CooldownState]:
        """Every remembered state (resting or recently failed)."""
        return [
            CooldownState(
                cid, model, s.until, s.level, s.status, s.quota, s.failures, s.suspends, s.reason
            )
            for (cid, model), s in self._states.items()
        ]

    # -- choosing --------------------------------------------------------------------------

    def order(self, candidates: Sequence[T], model: str) -> list[T]:
        """The ready candidates in the order to try them.

        The highest priority group that has a ready member comes first, rotated by the
        round-robin cursor for (model, priority) or in config order for fill-first;
        lower groups follow as fall-backs for this request. Several candidates of one
        credential (an alias pool) stay together and rotate among themselves.

        Raises:
            NoCredential: no candidate, or every candidate is disabled.
            AllCoolingDown: every enabled candidate is resting.
        """
        ready = self._ready(candidates, model)
        groups: dict[int, list[T]] = {}
        for c in ready:
            groups.setdefault(c.credential.priority, []).append(c)
        rotate = normalize_strategy(self._strategy()) == ROUND_ROBIN
        if len(self._cursors) > _MAX_CURSORS:
            self._cursors.clear()

        result: list[T] = []
        for rank, priority in enumerate(sorted(groups, reverse=True)):
            # Only the group that will actually serve this request moves its cursors.
            result.extend(self._group_order(groups[priority], model, priority, rotate, rank == 0))
        return result

    def _ready(self, candidates: Sequence[T], model: str) -> list[T]:
        """The enabled candidates not resting now; raises when there are none."""
        now = self._now()
        ready: list[T] = []
        resting: list[Resting] = []
        earliest: float | None = None
        enabled = False
        for c in candidates:
            if c.credential.disabled:
                continue
            enabled = True
            until = self.blocked_until(c.credential, c.upstream_model)
            if until > now:
                if earliest is None or until < earliest:
                    earliest = until
                resting.append(self._resting(c.credential, c.upstream_model, until - now))
            else:
                ready.append(c)
        if not enabled:
            hint = None
            if candidates:
                hint = "every credential that serves it is disabled; enable one in config.yaml"
            raise NoCredential(model, _provider_list(candidates), hint)
        if not ready:
            assert earliest is not None
            raise AllCoolingDown(
                model,
                _provider_list(c for c in candidates if not c.credential.disabled),
                earliest - now,
                sorted(resting, key=lambda r: r.seconds),
                frees_at=earliest,
            )
        return ready

    def _resting(self, credential: Credential, model: str | None, seconds: float) -> Resting:
        state = self._states.get((credential.id, model))
        whole = self._states.get((credential.id, None))
        if state is None or (whole is not None and whole.until > state.until):
            state = whole
        if state is None:
            return Resting(credential.label, 0, seconds)
        if state.reason:
            return Resting(credential.label, state.status, seconds, state.reason, state.until)
        return Resting(credential.label, state.status, seconds)

    def _group_order(
        self, group: list[T], model: str, priority: int, rotate: bool, advance: bool
    ) -> list[T]:
        """One priority group in order: credentials rotated (round-robin), and each alias
        pool rotated among itself; `advance` moves the cursors (the serving group only)."""
        by_cred: dict[str, list[T]] = {}
        for c in group:
            by_cred.setdefault(c.credential.id, []).append(c)
        cred_ids = list(by_cred)
        if rotate:
            cred_ids = self._rotate(("rr", model, priority), cred_ids, advance)
        result: list[T] = []
        for position, cid in enumerate(cred_ids):
            members = by_cred[cid]
            if len(members) > 1:
                # An alias pool moves on each time its credential serves first.
                first = advance and position == 0
                members = self._rotate(("pool", model, cid), members, first)
            result.extend(members)
        return result

    def _rotate(self, key: tuple[object, ...], items: list[_Item], advance: bool) -> list[_Item]:
        if len(items) < 2:
            return items
        cursor = self._cursors.get(key, 0)
        start = cursor % len(items)
        if advance:
            self._cursors[key] = (cursor + 1) % (1 << 30)
        return items[start:] + items[:start]

    # -- outcomes --------------------------------------------------------------------------

    def mark_success(self, credential: Credential, model: str | None) -> None:
        """The credential served `model`: forget its failures and backoff level."""
        self._states.pop((credential.id, model), None)
        # A success proves the credential itself works again.
        self._states.pop((credential.id, None), None)

    def mark_cancelled(self, credential: Credential, model: str | None) -> None:
        """The client went away: that says nothing about the credential, so nothing changes."""

    def mark_failure(
        self,
        credential: Credential,
        model: str | None,
        status: int,
        retry_after: float | None = None,
        *,
        model_unsupported: bool = False,
        challenge: bool = False,
        reason: str = "",
    ) -> float:
        """Record a failed attempt and bench the pair per the cooldown table.

        Args:
            credential: the credential that was tried.
            model: the upstream model, or None to bench the whole credential.
            status: the upstream HTTP status (0 for a network error).
            retry_after: seconds the upstream asked to wait (Retry-After or body field).
            model_unsupported: a 400/422 saying the model is not supported (12 h).
            challenge: a Cloudflare challenge page (like 429, at least 10 s).
            reason: the provider's own reason for `retry_after` (a quota reset), which the
                "all credentials are cooling down" error repeats.

        Returns:
            Seconds until the pair is ready again (0 when it is not benched).
        """
        now = self._now()
        state = self._count_failure((credential.id, model), status, now)
        if self._disable_cooling() or credential.disable_cooling:
            return max(0.0, state.until - now)

        active = state.until > now
        cooldown = cooldown_for(
            status,
            state.level,
            self._rng,
            retry_after=retry_after,
            model_unsupported=model_unsupported,
            challenge=challenge,
            jitter=self._jitter,
            repeats=state.failures,
        )
        if cooldown.seconds <= 0:
            return max(0.0, state.until - now)
        if cooldown.quota and active and state.quota and clean_retry_after(retry_after) is None:
            # In-flight requests that started before the bench all report their 429 now;
            # one window escalates the backoff once, not once per request.
            return state.until - now
        until = now + cooldown.seconds
        if active and state.until >= until:
            # Never shorten a longer bench (e.g. a 5xx arriving during a 12 h 404 bench).
            return state.until - now
        state.until = until
        state.level = cooldown.level
        state.quota = cooldown.quota
        state.suspends = cooldown.suspends
        state.reason = reason if cooldown.quota else ""
        self._tell(credential.id, model, state)
        return until - now

    # -- sharing (cliproxy.store) ----------------------------------------------------------

    def watch(self, watcher: Callable[[CooldownState], None]) -> None:
        """Call `watcher` with every new bench this pool decides (not with `bench`'s)."""
        self._watchers.append(watcher)

    def _tell(self, cid: str, model: str | None, s: _State) -> None:
        view = CooldownState(
            cid, model, s.until, s.level, s.status, s.quota, s.failures, s.suspends, s.reason
        )
        for watcher in self._watchers:
            watcher(view)

    def bench(self, state: CooldownState) -> None:
        """Take a bench decided elsewhere (another instance); a longer local one stays."""
        key = (state.credential_id, state.model)
        mine = self._states.get(key)
        if mine is None:
            mine = self._states[key] = _State()
        if state.until <= mine.until:
            return
        mine.until, mine.level, mine.status = state.until, state.level, state.last_status
        mine.quota, mine.suspends, mine.updated = state.quota, state.suspends, self._now()
        mine.reason = state.reason if state.quota else ""

    def _count_failure(self, key: tuple[str, str | None], status: int, now: float) -> _State:
        """The pair's state with this failure counted (pruning old states now and then)."""
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        if now - state.updated > STREAK_WINDOW:
            state.failures = 0  # an old failure does not make this one a repeat
        state.status = status
        state.failures += 1
        state.updated = now
        self._marks += 1
        if self._marks % _PRUNE_EVERY == 0:
            self.prune()
        return state

    # -- housekeeping ----------------------------------------------------------------------

    def retain(self, credential_ids: Iterable[str]) -> None:
        """Drop all state of credentials not in `credential_ids` (after a reload)."""
        keep = set(credential_ids)
        for key in [k for k in self._states if k[0] not in keep]:
            del self._states[key]
        for cursor in [k for k in self._cursors if k[0] == "pool" and k[2] not in keep]:
            del self._cursors[cursor]

    def prune(self) -> None:
        """Forget states whose bench ended long enough ago."""
        horizon = self._now() - _STATE_RETENTION
        for key in [k for k, s in self._states.items() if max(s.until, s.updated) < horizon]:
            del self._states[key]

    # -- retry rounds ----------------------------------------------------------------------

    def retry_delay(
        self,
        candidates: Iterable[Routable],
        attempt: int,
        *,
        request_retry: int,
        max_retry_interval: float,
        last_status: int | None = None,
        retry_after: float | None = None,
        request_invalid: bool = False,
    ) -> float | None:
        """Seconds to wait before another pass over the credentials, or None to give up.

        core.md §4.3.2: after a failed pass number `attempt` (0 for the first), wait for
        the shortest cooldown among candidates whose `request-retry` (the credential's
        `request-retry` option, else the global value) exceeds `attempt`, if that wait
        fits in `max-retry-interval`. With nothing resting, only a 429 whose upstream
        retry-after fits (and attempts remain) waits. Every failure that is not
        request-invalid qualifies: the old "403, 408, 500, 502, 503, 504" list in the
        example config is stale.
        """
        if max_retry_interval <= 0 or request_invalid:
            return None
        now = self._now()
        shortest: float | None = None
        for c in candidates:
            cred = c.credential
            if cred.disabled:
                continue
            budget = cred.option("request-retry", cred.option("request_retry"))
            if not isinstance(budget, int) or isinstance(budget, bool):
                budget = request_retry
            if budget <= attempt:
                continue
            wait = self.blocked_until(cred, c.upstream_model) - now
            if wait > 0 and (shortest is None or wait < shortest):
                shortest = wait
        if shortest is not None:
            return shortest if shortest <= max_retry_interval else None
        if (
            last_status == 429
            and retry_after is not None
            and 0 <= retry_after <= max_retry_interval
            and request_retry > attempt
        ):
            return float(retry_after)
        return None
