# -*- test-case-name: tests.observe.test_statistics -*-
"""The per-upstream-call event and the fan-out to its observers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.logger import Logger
from zope.interface import Interface, implementer

from cliproxy.usage import UsageBook, UsageRecord

log = Logger()


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One finished upstream call (success or failure).

    `model` is the model the upstream was asked for and `alias` the name the client asked
    for (the same when no alias applied). `client_key` is the client key principal as the
    usage book keeps it (last four characters); `latency`/`ttft` are seconds when known.
    """

    time: float
    provider: str
    credential_id: str
    model: str
    client_key: str
    route: str
    status: int
    stream: bool
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    latency: float | None = None
    ttft: float | None = None
    alias: str = ""

    @property
    def failed(self) -> bool:
        return self.status >= 400

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ICallObserver(Interface):
    def call_finished(event: CallEvent) -> None:  # noqa: N805 - zope.interface style
        """Called once per upstream call, in the reactor thread."""


class CallEvents:
    """Observers of upstream calls; a failing observer never breaks the call."""

    def __init__(self) -> None:
        self._observers: list[Callable[[CallEvent], None]] = []

    def subscribe(self, observer: ICallObserver) -> None:
        self._observers.append(observer.call_finished)

    def emit(self, event: CallEvent) -> None:
        for observe in list(self._observers):
            try:
                observe(event)
            except Exception:
                log.failure("call observer {observer!r} failed", observer=observe)


def event_of(record: UsageRecord) -> CallEvent:
    u = record.usage
    return CallEvent(
        time=record.time,
        provider=record.provider,
        credential_id=record.credential_id,
        model=record.upstream_model or record.model,
        alias=record.model,
        client_key=record.client_key,
        route=record.route,
        status=record.status,
        stream=record.stream,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cached_tokens=u.cached_tokens,
        latency=record.latency,
        ttft=record.ttft,
    )


class ObservedUsageBook(UsageBook):
    """The usage book every upstream call is recorded in, emitting a `CallEvent` per record."""

    def __init__(self, now: Callable[[], float], events: CallEvents, keep: int = 10000) -> None:
        super().__init__(now, keep)
        self.events = events

    def record(self, **kwargs: object) -> UsageRecord:
        rec = super().record(**kwargs)  # type: ignore[arg-type]
        self.events.emit(event_of(rec))
        return rec


__all__ = ["CallEvent", "CallEvents", "ICallObserver", "ObservedUsageBook", "implementer"]
