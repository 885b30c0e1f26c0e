# -*- test-case-name: tests.test_routing -*-
"""`Router.handle`: a client request tried on each credential that serves its model.

It resolves the model, asks the pool for the credentials in the order to try them, runs
one `Attempt` per credential until one answers, and, when a whole round fails, waits out
the shortest cooldown (within `request-retry`) before another round. A stream whose round
failed before any byte reached the client is first re-run at once, up to
`streaming.bootstrap-retries` times (core.md §1.7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet import task
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger

from cliproxy.config import Config
from cliproxy.credentials.affinity import SessionAffinity
from cliproxy.credentials.pool import CredentialPool, SelectionError
from cliproxy.registry import ModelRegistry, Resolution
from cliproxy.routing.attempt import Attempt, AttemptServices
from cliproxy.routing.classify import AttemptFailure, selection_error, upstream_error
from cliproxy.routing.offload import LargeBodies
from cliproxy.routing.results import ClientRequest, JSONResult, StreamResult
from cliproxy.upstream.http import UpstreamHTTP
from cliproxy.usage import UsageBook

log = Logger()

#: failures a streaming request's bootstrap retry re-runs (core.md §1.7): no answer, the
#: account refused, timed out or rate-limited, upstream trouble
BOOTSTRAP_STATUSES = frozenset({0, 401, 402, 403, 408, 429})


def bootstrap_retryable(failure: AttemptFailure) -> bool:
    """Whether a round that failed before the client saw anything is worth re-running."""
    if failure.request_invalid:
        return False
    return failure.status in BOOTSTRAP_STATUSES or failure.status >= 500


class Router:
    """Serves `ClientRequest`s from the credentials in the registry.

    Args:
        reactor: time for retry waits, Retry-After dates and stream idle timers.
        config: the current config snapshot (read once per request and per attempt).
        registry: the current model registry.
        pool: orders credentials and keeps their cooldowns.
        http: the upstream HTTP client.
        usage: where every upstream call is recorded.
        affinity: routing.session-affinity.
        bodies: the worker threads that parse and translate large bodies.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        config: Callable[[], Config],
        registry: Callable[[], ModelRegistry],
        pool: CredentialPool,
        http: UpstreamHTTP,
        usage: UsageBook,
        affinity: SessionAffinity | None = None,
        bodies: LargeBodies | None = None,
    ) -> None:
        self.reactor = reactor
        self._config = config
        self._registry = registry
        self.pool = pool
        self.http = http
        self.usage = usage
        #: routing.session-affinity: keeps a conversation on the credential that served it
        self.affinity = affinity
        #: worker threads for large bodies (not started: everything is done inline)
        self.bodies = bodies or LargeBodies(
            cast(IReactorFromThreads, reactor), lambda: config().limits
        )
        self._services = AttemptServices(reactor, pool, http, usage, self.bodies)

    async def handle(self, req: ClientRequest) -> JSONResult | StreamResult:
        """Answer `req` from the first credential that can.

        Raises:
            RouteError: nothing could answer; its status, headers and body say why, in
                the client's family shape.
        """
        config = self._config()
        try:
            resolution = self._registry().resolve(req.model)
        except SelectionError as e:
            raise selection_error(e) from e
        round_number = 0
        bootstrap = config.streaming.bootstrap_retries if req.stream else 0
        outcome = await self._round(req, resolution, config)
        while True:
            if not isinstance(outcome, AttemptFailure):
                return outcome
            if bootstrap > 0 and bootstrap_retryable(outcome):
                bootstrap -= 1
                log.info(
                    "stream for {model} failed before its first byte ({status}); "
                    "bootstrap retry, {left} left",
                    model=req.model,
                    status=outcome.status,
                    left=bootstrap,
                )
                outcome = await self._round(req, resolution, config, fallback=outcome)
                continue
            delay = self.pool.retry_delay(
                resolution.candidates,
                round_number,
                request_retry=config.request_retry,
                max_retry_interval=config.max_retry_interval,
                last_status=outcome.status,
                retry_after=outcome.retry_after,
                request_invalid=outcome.request_invalid,
            )
            if delay is None:
                raise upstream_error(req.format, outcome)
            log.info(
                "all credentials failed for {model}; retry round {n} in {delay:.1f}s",
                model=req.model,
                n=round_number + 1,
                delay=delay,
            )
            await task.deferLater(self.reactor, delay, lambda: None)
            round_number += 1
            outcome = await self._round(req, resolution, config)

    async def _round(
        self,
        req: ClientRequest,
        resolution: Resolution,
        config: Config,
        fallback: AttemptFailure | None = None,
    ) -> JSONResult | StreamResult | AttemptFailure:
        """One pass over the ready credentials: the first answer, or the last failure.

        `fallback` is the failure a bootstrap retry repeats: when no credential is ready
        for it (all resting after that failure), that failure stands.
        """
        try:
            ordered = self.pool.order(resolution.candidates, resolution.base_model)
        except SelectionError as e:
            if fallback is not None:
                return fallback
            raise selection_error(e) from e
        session = self.affinity.key_for(req.headers, req.body) if self.affinity else ""
        if session and self.affinity:
            ordered = self.affinity.prefer(ordered, session, resolution.base_model)
        if req.pinned:  # tried first while it is ready; otherwise the pool's order
            pin = req.pinned
            ordered = sorted(ordered, key=lambda c: c.credential.id != pin)
        last: AttemptFailure | None = None
        limit = config.max_retry_credentials
        for tried, candidate in enumerate(ordered):
            if limit and tried >= limit:
                break
            attempt = Attempt(
                req, candidate, resolution.thinking_suffix, self._config(), self._services
            )
            outcome = await attempt.run()
            if not isinstance(outcome, AttemptFailure):
                req.served_by = candidate.credential.id
                if session and self.affinity:
                    self.affinity.bind(
                        session, ordered, resolution.base_model, candidate.credential
                    )
                return outcome
            last = outcome
            if outcome.request_invalid:
                break
        assert last is not None  # the pool orders at least one candidate or raises
        return last
