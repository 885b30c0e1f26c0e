"""The process counts behind cliproxy_open_streams and cliproxy_token_refreshes_total."""

from __future__ import annotations

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor

from cliproxy.credentials.oauth.holder import NeedsLogin
from cliproxy.observe.metrics import Metrics
from cliproxy.observe.signals import COUNTS, ProcessCounts
from cliproxy.upstream.http import UpstreamHTTP
from cliproxy.usage import CallTiming, UsageBook
from tests.fakes import FakeOAuth
from tests.oauth.kit import T0, claude_file
from tests.oauth.test_holder import holder_for


class _Result:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def done(self, *args: object) -> None:
        self.calls.append(args)


def test_a_stream_counts_open_until_its_first_done():
    counts = ProcessCounts()
    a, b = _Result(), _Result()
    counts.track_stream(a)
    counts.track_stream(b)
    assert counts.open_streams == 2
    a.done("usage", None)
    a.done("usage", None)  # a second call never counts twice
    assert counts.open_streams == 1 and a.calls == [("usage", None)] * 2
    b.done("usage", 499)
    assert counts.open_streams == 0


def _samples(metrics: Metrics, family: str) -> dict[tuple[str, ...], float]:
    text = metrics.exposition().decode()
    for f in text_string_to_metric_families(text):
        if f.name == family:
            return {tuple(s.labels.values()): s.value for s in f.samples}
    return {}


def test_metrics_read_the_process_counts_when_scraped():
    counts = ProcessCounts()
    metrics = Metrics(open_streams=lambda: counts.open_streams, refreshes=lambda: counts.refreshes)
    counts.track_stream(_Result())
    counts.token_refreshed("claude", True)
    counts.token_refreshed("codex", False)
    assert _samples(metrics, "cliproxy_open_streams") == {(): 1.0}
    assert _samples(metrics, "cliproxy_token_refreshes") == {
        ("claude", "success"): 1.0,
        ("codex", "failure"): 1.0,
    }


def test_call_timing_gives_latency_and_time_to_first_byte():
    now = [100.0]
    timing = CallTiming(lambda: now[0])
    book = UsageBook(lambda: now[0])
    assert timing.latency() is None and timing.ttft() is None
    timing.start()
    now[0] += 0.5
    timing.mark_first_byte()
    now[0] += 2.0
    rec = book.record(
        model="alias",
        provider="p",
        credential_id="c",
        client_key=None,
        status=200,
        stream=True,
        upstream_model="real",
        timing=timing,
    )
    assert (rec.latency, rec.ttft, rec.model, rec.upstream_model) == (2.5, 0.5, "alias", "real")


@pytest.fixture
def http():
    client = UpstreamHTTP(reactor)
    yield client
    client.close()


@pytest_twisted.ensureDeferred
async def test_token_refreshes_are_counted_by_provider_and_result(start_fake, http):
    before = dict(COUNTS.refreshes)
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.add_refresh_token("rt-old")
    holder = holder_for(oauth)
    assert await holder.token(http) != "at-old"
    dead = holder_for(oauth, record=claude_file("at-x", "rt-unknown", T0 - 1))
    with pytest.raises(NeedsLogin):
        await dead.token(http)
    after = COUNTS.refreshes
    assert after.get(("claude", "success"), 0) - before.get(("claude", "success"), 0) == 1
    assert after.get(("claude", "failure"), 0) - before.get(("claude", "failure"), 0) == 1
