"""`StreamReader` in memory: the idle timer under a `task.Clock`, pause/resume as a
producer, the ways a stream ends, and decoding sniffed from the first bytes."""

from __future__ import annotations

import gzip

import zstandard
from twisted.internet import task
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed
from twisted.web.http import PotentialDataLoss

from cliproxy.upstream.body import BodyDecodeError
from cliproxy.upstream.stream import StreamIdleTimeout, StreamReader


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ends: list[Failure | None] = []

    def on_data(self, data: bytes) -> None:
        assert data, "on_data must never get an empty chunk"
        self.chunks.append(data)

    def on_end(self, reason) -> None:
        self.ends.append(reason)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def make(idle=10.0, encoding=None, **kw):
    clock = task.Clock()
    sink = Sink()
    reader = StreamReader(
        sink.on_data, sink.on_end, idle_timeout=idle, clock=clock, content_encoding=encoding, **kw
    )
    transport = StringTransport()
    reader.makeConnection(transport)
    return reader, sink, clock, transport


def test_each_chunk_resets_the_idle_timer():
    reader, sink, clock, transport = make(idle=10)
    for _ in range(5):
        clock.advance(9)
        reader.dataReceived(b"data: x\n\n")
    assert sink.ends == []
    assert transport.producerState == "producing"
    clock.advance(10)
    assert len(sink.ends) == 1 and sink.ends[0].check(StreamIdleTimeout)
    assert sink.ends[0].value.seconds == 10
    assert transport.producerState == "stopped"


def test_silence_from_the_start_times_out_too():
    reader, sink, clock, transport = make(idle=3)
    clock.advance(3)
    assert sink.ends[0].check(StreamIdleTimeout)
    # the connection then closes: nothing more is reported, data is ignored
    reader.dataReceived(b"late")
    reader.connectionLost(Failure(ResponseFailed([Failure(ConnectionLost())])))
    assert len(sink.ends) == 1 and sink.chunks == []


def test_paused_by_a_slow_client_is_not_idle():
    reader, sink, clock, transport = make(idle=5)
    assert IPushProducer.providedBy(reader)
    reader.pauseProducing()
    assert transport.producerState == "paused"
    clock.advance(60)
    assert sink.ends == []
    reader.resumeProducing()
    assert transport.producerState == "producing"
    clock.advance(5)
    assert sink.ends[0].check(StreamIdleTimeout)


def test_no_idle_timeout_when_disabled():
    reader, sink, clock, _ = make(idle=None)
    clock.advance(10_000)
    assert sink.ends == [] and clock.getDelayedCalls() == []


def test_clean_end_reports_none_once_and_stops_the_timer():
    reader, sink, clock, _ = make()
    reader.dataReceived(b"data: 1\n\n")
    reader.connectionLost(Failure(ResponseDone()))
    assert sink.ends == [None]
    assert clock.getDelayedCalls() == []
    assert sink.data == b"data: 1\n\n"


def test_close_delimited_body_end_is_clean():
    reader, sink, _, _ = make()
    reader.dataReceived(b"data: 1\n\n")
    reader.connectionLost(Failure(PotentialDataLoss()))
    assert sink.ends == [None]


def test_reset_is_reported_as_the_transport_failure():
    reader, sink, _, _ = make()
    reader.dataReceived(b"data: 1\n\n")
    reader.connectionLost(Failure(ResponseFailed([Failure(ConnectionLost())])))
    assert sink.ends[0].check(ResponseFailed)


def test_stop_reports_cancelled_and_stops_the_transport():
    reader, sink, clock, transport = make()
    reader.stopProducing()  # what the client request does when its client leaves
    assert sink.ends[0].check(CancelledError)
    assert transport.producerState == "stopped"
    reader.connectionLost(Failure(ResponseFailed([Failure(ConnectionLost())])))
    assert len(sink.ends) == 1
    assert clock.getDelayedCalls() == []


def test_gzip_without_header_is_sniffed_across_one_byte_chunks():
    reader, sink, _, _ = make()
    packed = gzip.compress(b"data: a\n\n" * 20)
    for i in range(len(packed)):
        reader.dataReceived(packed[i : i + 1])
    reader.connectionLost(Failure(ResponseDone()))
    assert sink.data == b"data: a\n\n" * 20
    assert sink.ends == [None]


def test_zstd_declared_by_header():
    reader, sink, _, _ = make(encoding="zstd")
    reader.dataReceived(zstandard.ZstdCompressor().compress(b"data: z\n\n"))
    reader.connectionLost(Failure(ResponseDone()))
    assert sink.data == b"data: z\n\n"


def test_tiny_plain_body_that_looks_like_a_magic_prefix_is_passed_at_the_end():
    reader, sink, _, _ = make()
    reader.dataReceived(b"\x1f")
    assert sink.chunks == []
    reader.connectionLost(Failure(ResponseDone()))
    assert sink.data == b"\x1f" and sink.ends == [None]


def test_truncated_gzip_stream_is_a_decode_failure():
    reader, sink, _, _ = make()
    reader.dataReceived(gzip.compress(b"data: a\n\n" * 20)[:-6])
    reader.connectionLost(Failure(ResponseDone()))
    assert sink.ends[0].check(BodyDecodeError)


def test_corrupt_stream_stops_the_upstream():
    reader, sink, _, transport = make(encoding="gzip")
    reader.dataReceived(b"definitely not gzip, but long enough")
    assert sink.ends[0].check(BodyDecodeError)
    assert transport.producerState == "stopped"


def test_a_failing_consumer_ends_the_stream_with_its_error():
    clock = task.Clock()
    ends = []

    def on_data(data):
        raise ValueError("translator broke")

    reader = StreamReader(on_data, ends.append, idle_timeout=5, clock=clock)
    transport = StringTransport()
    reader.makeConnection(transport)
    reader.dataReceived(b"data: 1\n\n")
    assert ends[0].check(ValueError)
    assert transport.producerState == "stopped"
    assert clock.getDelayedCalls() == []
