# -*- test-case-name: tests.store.test_shared -*-
"""Cooldowns shared by every instance: a bench here benches the credential everywhere.

Each bench the pool decides is upserted into `cliproxy_cooldown` and announced with
NOTIFY in the same statement; every instance applies the announcements it hears (its
own are skipped) and, at start and after each reconnection, reloads the table, so a
bench survives a restart of any instance and one missed while the database was away.
A quota bench carries the provider's reason, so every instance's cooling-down 429 names it.
Times cross hosts as wall-clock epochs (hosts are assumed to be NTP-synchronised).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from cliproxy.credentials.pool import CooldownState, CredentialPool
from cliproxy.store.shared import SharedStore

__all__ = ["CHANNEL", "SharedCooldowns"]

CHANNEL = "cliproxy_cooldown"

_UPSERT = (
    "INSERT INTO cliproxy_cooldown AS c"
    " (credential_id, model, until, level, status, quota, suspends, reason)"
    " VALUES (%(c)s, %(m)s, %(u)s, %(l)s, %(s)s, %(q)s, %(x)s, %(r)s)"
    " ON CONFLICT (credential_id, model) DO UPDATE SET until = EXCLUDED.until,"
    " level = EXCLUDED.level, status = EXCLUDED.status, quota = EXCLUDED.quota,"
    " suspends = EXCLUDED.suspends, reason = EXCLUDED.reason WHERE c.until < EXCLUDED.until;"
    " SELECT pg_notify('" + CHANNEL + "', %(payload)s)"
)


class SharedCooldowns:
    """Connects one pool's benches to the table and the channel.

    Args:
        store: the shared store.
        pool: this instance's pool.
        now: the pool's clock (`clock.seconds`).
        wall: wall-clock time, to translate epochs into the pool's clock.
    """

    log = Logger()

    def __init__(
        self,
        store: SharedStore,
        pool: CredentialPool,
        now: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pool = pool
        self._now = now
        self._wall = wall
        #: benches that could not be written (the database was away): sent on reconnection
        self._unsent: dict[tuple[str, str], dict[str, Any]] = {}
        pool.watch(self.benched)
        store.listen(CHANNEL, self.heard, self.reload)

    def benched(self, state: CooldownState) -> None:
        """The pool benched a pair: tell the table and the others."""
        fields = {
            "c": state.credential_id,
            "m": state.model or "",
            "u": self._wall() + (state.until - self._now()),
            "l": state.level,
            "s": state.last_status,
            "q": state.quota,
            "x": state.suspends,
            "r": state.reason,
        }
        fields["payload"] = json.dumps({**fields, "i": self.store.instance})
        self._send(fields)

    def _send(self, fields: dict[str, Any]) -> None:
        key = (str(fields["c"]), str(fields["m"]))
        d = defer.ensureDeferred(self.store.run(_UPSERT, fields))

        def failed(failure: Any) -> None:
            self._unsent[key] = fields
            self.log.warn(
                "store: cooldown of {cid} not shared yet: {error}",
                cid=key[0],
                error=(failure.getErrorMessage().strip().splitlines() or [""])[0],
            )

        d.addErrback(failed)

    def heard(self, payload: str) -> None:
        """A NOTIFY from some instance."""
        fields = json.loads(payload)
        if fields.get("i") == self.store.instance:
            return
        self._apply(fields)

    def _apply(self, fields: dict[str, Any]) -> None:
        until = self._now() + (float(fields["u"]) - self._wall())
        if until <= self._now():
            return
        self.pool.bench(
            CooldownState(
                credential_id=str(fields["c"]),
                model=str(fields["m"]) or None,
                until=until,
                level=int(fields["l"]),
                last_status=int(fields["s"]),
                quota=bool(fields["q"]),
                failures=0,
                suspends=bool(fields["x"]),
                reason=str(fields.get("r") or ""),  # NOTIFYs of older instances have none
            )
        )

    def reload(self) -> defer.Deferred[object]:
        """Apply every bench still running in the table (start, reconnection), after
        sending the ones made here while the database was away."""
        unsent, self._unsent = self._unsent, {}
        for fields in unsent.values():
            if float(fields["u"]) > self._wall():
                self._send(fields)
        d = defer.ensureDeferred(
            self.store.query(
                "SELECT credential_id, model, until, level, status, quota, suspends, reason"
                " FROM cliproxy_cooldown WHERE until > %s",
                (self._wall(),),
            )
        )

        def apply(rows: list[tuple[Any, ...]]) -> None:
            for c, m, u, lv, s, q, x, r in rows:
                self._apply({"c": c, "m": m, "u": u, "l": lv, "s": s, "q": q, "x": x, "r": r})

        def failed(failure: Any) -> None:
            self.log.warn("store: cooldowns not reloaded: {e}", e=failure.getErrorMessage())

        return d.addCallbacks(apply, failed)
