"""CallEvents fan-out, the usage queue's retention and the aggregated view."""

from __future__ import annotations

from twisted.internet import task

from cliproxy.observe.events import CallEvents, ObservedUsageBook
from cliproxy.observe.statistics import UsageStatistics
from cliproxy.usage import Usage


def _book(enabled=True, retention=60.0):
    clock = task.Clock()
    events = CallEvents()
    stats = UsageStatistics(lambda: enabled, lambda: retention, clock.seconds)
    events.subscribe(stats)
    book = ObservedUsageBook(clock.seconds, events)
    return clock, book, stats


def _record(book, status=200):
    book.record(
        model="m",
        provider="p",
        credential_id="c",
        client_key="sk-abcd1234",
        status=status,
        stream=False,
        usage=Usage(input_tokens=3, output_tokens=4),
    )


def test_each_record_becomes_one_event_in_every_view():
    _, book, stats = _book()
    _record(book)
    _record(book, status=429)
    snap = stats.snapshot()
    assert snap["usage"]["total_requests"] == 2 and snap["failed_requests"] == 1
    assert snap["usage"]["apis"]["…1234"]["models"]["m"]["total_tokens"] == 14
    assert stats.counts("c")[:2] == (1, 1)
    assert [r["failed"] for r in stats.pop(10)] == [False, True]


def test_queued_records_expire_after_the_retention():
    clock, book, stats = _book(retention=60)
    _record(book)
    clock.advance(61)
    assert stats.pop(5) == []


def test_queue_stays_empty_while_statistics_are_disabled():
    _, book, stats = _book(enabled=False)
    _record(book)
    assert stats.pop(5) == [] and stats.snapshot()["usage"]["total_requests"] == 1
