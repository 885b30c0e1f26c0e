# -*- test-case-name: tests.store.test_usage -*-
"""Usage records of every instance in one table, and the cluster totals read back.

`SharedUsage` observes every upstream call (`ICallObserver`, the same events the local
statistics and `/metrics` count) and writes them in batches, once a second, so a request
never waits for the database; while the database is away the batch is kept (up to
`BACKLOG` rows) and written when it returns. Rows older than `store.usage-retention`
(or `usage-retention-days`) are deleted at start and every hour.

The totals over all instances are read with one GROUP BY: `totals()` answers
`GET /v0/management/cluster-usage`, and the last totals read become the
`cliproxy_cluster_*` series of `/metrics` (refreshed after each write and every
`REFRESH` seconds, never at scrape time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from cliproxy.management.resource import Endpoint, answer, error
from cliproxy.observe.events import CallEvent, ICallObserver
from cliproxy.store.shared import SharedStore

__all__ = ["ClusterUsage", "SharedUsage"]

#: seconds between batch writes
FLUSH_EVERY = 1.0
#: seconds between reads of the cluster totals for /metrics
REFRESH = 15.0
#: seconds between deletions of rows past the retention
PRUNE_EVERY = 3600.0
#: rows kept in memory while the database is away (the oldest are dropped past it)
BACKLOG = 50_000

_INSERT = (
    "INSERT INTO cliproxy_usage (at, instance, provider, model, credential_id, route,"
    " client_key, status, ok, input_tokens, output_tokens, cached_tokens, reasoning_tokens)"
    " VALUES (to_timestamp(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

_SUMS = (
    "count(*), count(*) FILTER (WHERE NOT ok), coalesce(sum(input_tokens), 0),"
    " coalesce(sum(output_tokens), 0), coalesce(sum(cached_tokens), 0),"
    " coalesce(sum(reasoning_tokens), 0)"
)
_FIELDS = (
    "requests",
    "failed",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
)

Row = tuple[Any, ...]


def _sums(row: Row) -> dict[str, int]:
    out = {name: int(v) for name, v in zip(_FIELDS, row, strict=True)}
    out["success"] = out["requests"] - out["failed"]
    out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    return out


@implementer(ICallObserver)
class SharedUsage:
    """Writes this instance's usage records; reads everyone's totals."""

    log = Logger()

    def __init__(self, store: SharedStore) -> None:
        self.store = store
        self.retention = store.settings.usage_retention_seconds
        self._batch: list[Row] = []
        self._dropped = 0
        self._failing = False
        #: (provider, model, status class) -> sums, as last read (for /metrics)
        self.last: dict[tuple[str, str], dict[str, int]] = {}
        self._loops = [
            self._loop(self.flush, FLUSH_EVERY),
            self._loop(self.refresh, REFRESH),
            self._loop(self.prune, PRUNE_EVERY),
        ]
        store.when_running(self._start, self._stop)

    def _loop(self, work: Any, every: float) -> tuple[task.LoopingCall, float]:
        loop = task.LoopingCall(lambda: defer.ensureDeferred(work()))
        loop.clock = self.store.reactor
        return loop, every

    def _start(self) -> None:
        for loop, every in self._loops:
            loop.start(every, now=True)

    def _stop(self) -> None:
        for loop, _ in self._loops:
            if loop.running:
                loop.stop()

    # -- writing -------------------------------------------------------------------------

    def call_finished(self, event: CallEvent) -> None:
        self._batch.append(
            (
                event.time,
                self.store.instance,
                event.provider,
                event.model,
                event.credential_id,
                event.route,
                event.client_key,
                event.status,
                not event.failed,
                event.input_tokens,
                event.output_tokens,
                event.cached_tokens,
                event.reasoning_tokens,
            )
        )
        if len(self._batch) > BACKLOG:
            del self._batch[: len(self._batch) - BACKLOG]
            self._dropped += 1

    async def flush(self) -> None:
        """Write the records gathered since the last flush (kept on failure)."""
        if not self._batch:
            return
        rows, self._batch = self._batch, []

        def insert(cursor: Any) -> None:
            cursor.executemany(_INSERT, rows)

        try:
            await self.store.interact(insert)
        except Exception as e:
            self._batch[:0] = rows
            if not self._failing:  # once per outage, not every second
                self.log.warn(
                    "store: usage records kept in memory until the database is back: {e}",
                    e=str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__,
                )
            self._failing = True
            return
        if self._failing:
            self.log.info("store: usage records written again")
            self._failing = False
        if self._dropped:
            self.log.warn("store: usage records were dropped while the database was away")
            self._dropped = 0
        await self.refresh()

    async def prune(self) -> None:
        """Delete the rows older than the retention."""
        try:
            await self.store.run(
                "DELETE FROM cliproxy_usage WHERE at < now() - make_interval(secs => %s)",
                (self.retention,),
            )
        except Exception as e:
            self.log.warn("store: old usage records not deleted: {e}", e=e)

    # -- reading -------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the cluster totals that /metrics shows."""
        try:
            rows = await self.store.query(
                f"SELECT provider, model, {_SUMS} FROM cliproxy_usage GROUP BY provider, model"
            )
        except Exception:
            return  # the last totals stay; the flush already said the database is away
        self.last = {(str(r[0]), str(r[1])): _sums(r[2:]) for r in rows}

    async def totals(self) -> dict[str, Any]:
        """Every instance's usage and this instance's, from the table."""
        rows = await self.store.query(
            f"SELECT instance, provider, model, credential_id, {_SUMS} FROM cliproxy_usage"
            " GROUP BY instance, provider, model, credential_id"
        )
        cluster: dict[str, Any] = {
            "total": _sums((0,) * 6),
            "by_instance": {},
            "by_model": {},
            "by_credential": {},
        }
        local = _sums((0,) * 6)
        for instance, provider, model, credential, *sums in rows:
            part = _sums(tuple(sums))
            _add(cluster["total"], part)
            _add(cluster["by_instance"].setdefault(instance, _sums((0,) * 6)), part)
            _add(cluster["by_model"].setdefault(f"{provider}/{model}", _sums((0,) * 6)), part)
            _add(cluster["by_credential"].setdefault(credential, _sums((0,) * 6)), part)
            if instance == self.store.instance:
                _add(local, part)
        return {
            "instance": self.store.instance,
            "retention_seconds": self.retention,
            "cluster": cluster,
            "local": local,
            "unwritten": len(self._batch),
        }

    def collect(self) -> Iterable[Any]:
        """The `cliproxy_cluster_*` series (a prometheus_client collector)."""
        requests = CounterMetricFamily(
            "cliproxy_cluster_requests",
            "Upstream calls of every instance sharing the store (retained rows)",
            labels=["provider", "model", "result"],
        )
        tokens = CounterMetricFamily(
            "cliproxy_cluster_tokens",
            "Tokens of every instance sharing the store (retained rows)",
            labels=["provider", "model", "direction"],
        )
        for (provider, model), sums in sorted(self.last.items()):
            requests.add_metric([provider, model, "success"], sums["success"])
            requests.add_metric([provider, model, "failed"], sums["failed"])
            for direction in ("input", "output", "cached", "reasoning"):
                tokens.add_metric([provider, model, direction], sums[f"{direction}_tokens"])
        yield requests
        yield tokens


def _add(into: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        into[key] += value


class ClusterUsage(Endpoint):
    """`GET /v0/management/cluster-usage`: usage of every instance and of this one."""

    def __init__(self, usage: SharedUsage) -> None:
        super().__init__()
        self.usage = usage

    def render_GET(self, request: Request) -> int:
        d = defer.ensureDeferred(self.usage.totals())
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def done(body: dict[str, Any]) -> None:
            if not gone:
                request.write(answer(request, body))
                request.finish()

        def failed(failure: Any) -> None:
            if not gone:
                message = f"the shared store is unreachable: {failure.getErrorMessage()}"
                request.write(error(request, 503, message.strip().splitlines()[0]))
                request.finish()

        d.addCallbacks(done, failed)
        return NOT_DONE_YET
