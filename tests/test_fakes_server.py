"""`FakeUpstream` over real loopback sockets: scripting, records, framing and failures."""

import gzip
import json
import re

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import Protocol
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from twisted.web.iweb import UNKNOWN_LENGTH

from tests.fakes import FakeUpstream, Pause, Reply, Tunnel, websocket_accept


async def fetch(method, url, pool, **kwargs):
    """Send a request; return the response and the list of body reads, as they arrived."""
    response = await treq.request(method, url, pool=pool, unbuffered=True, **kwargs)
    reads = []
    await treq.collect(response, reads.append)
    return response, reads


class _Reader(Protocol):
    """Collects body reads; `abort()` drops the connection like a client that leaves."""

    def __init__(self):
        self.reads = []
        self.first = defer.Deferred()
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.reads.append(data)
        if not self.first.called:
            self.first.callback(data)

    def connectionLost(self, reason):
        self.reason = reason
        self.done.callback(None)

    def abort(self):
        self.transport.stopProducing()


@pytest_twisted.ensureDeferred
async def test_records_method_path_query_headers_and_json_body(fake_upstream, http_pool):
    fake_upstream.script("POST", "/v1/x", Reply(json={"ok": True}))
    response, reads = await fetch(
        "POST",
        fake_upstream.url + "/v1/x?key=abc&key=def&alt=sse",
        http_pool,
        headers={"X-Api-Key": "k1", "Content-Type": "application/json"},
        data=b'{"model": "m"}',
    )
    assert response.code == 200
    assert json.loads(b"".join(reads)) == {"ok": True}
    rec = fake_upstream.last
    assert (rec.method, rec.path) == ("POST", "/v1/x")
    assert rec.query == {"key": ["abc", "def"], "alt": ["sse"]}
    assert rec.header("x-api-key") == "k1"
    assert rec.key == "k1"
    assert rec.raw_body == b'{"model": "m"}'
    assert rec.json == {"model": "m"}
    assert rec.route == "scripted"
    assert rec.version == "HTTP/1.1" and rec.peer_port > 0
    assert rec.status == 200
    assert rec.finished and not rec.disconnected
    assert await rec.when_done() == "finished"


@pytest_twisted.ensureDeferred
async def test_gzip_request_body_is_recorded_raw_and_decoded(fake_upstream, http_pool):
    raw = gzip.compress(b'{"method": "getUserInfo"}')
    await fetch(
        "POST",
        fake_upstream.url + "/api/internal",
        http_pool,
        headers={"Content-Encoding": "gzip"},
        data=raw,
    )
    rec = fake_upstream.last
    assert rec.raw_body == raw
    assert rec.json == {"method": "getUserInfo"}


@pytest_twisted.ensureDeferred
async def test_script_queue_is_fifo_then_default_then_not_found(fake_upstream, http_pool):
    fake_upstream.script("GET", "/a", Reply(201), Reply(202))
    fake_upstream.default("GET", "/a", Reply(299))
    fake_upstream.script("*", re.compile(r"/b/\d+"), Reply(203))
    codes = []
    for path in ["/a", "/a", "/a", "/b/12", "/b/12", "/c"]:
        response, _ = await fetch("GET", fake_upstream.url + path, http_pool)
        codes.append(response.code)
    assert codes == [201, 202, 299, 203, 404, 404]
    assert [r.route for r in fake_upstream.requests][-1] == "not-found"
    assert fake_upstream.pending() == 0


@pytest_twisted.ensureDeferred
async def test_per_key_scripts_win_over_shared_ones_and_keys_are_enforced(start_fake, http_pool):
    fake = start_fake(FakeUpstream, keys={"A", "B"})
    fake.script("POST", "/m", Reply(429, json={}, retry_after=7), key="A")
    fake.default("POST", "/m", Reply(200, json={"who": "any"}))
    a, _ = await fetch("POST", fake.url + "/m", http_pool, headers={"X-Api-Key": "A"})
    b, _ = await fetch("POST", fake.url + "/m", http_pool, headers={"Authorization": "Bearer B"})
    a2, _ = await fetch("POST", fake.url + "/m", http_pool, headers={"X-Api-Key": "A"})
    bad, _ = await fetch("POST", fake.url + "/m", http_pool, headers={"X-Api-Key": "C"})
    assert (a.code, b.code, a2.code, bad.code) == (429, 200, 200, 401)
    assert a.headers.getRawHeaders("retry-after") == ["7"]
    assert [r.key for r in fake.requests] == ["A", "B", "A", "C"]
    assert fake.requests[-1].route == "auth"


@pytest_twisted.ensureDeferred
async def test_byte_splits_arrive_as_separate_reads(fake_upstream, http_pool):
    # split inside an SSE field, inside a CRLF, and inside a UTF-8 sequence
    pieces = [b'data: {"t":"\xc3', b'\xa9"}\r', b"\n\r\n"]
    fake_upstream.script("GET", "/s", Reply(chunks=pieces, chunk_delay=0.02))
    response, reads = await fetch("GET", fake_upstream.url + "/s", http_pool)
    assert reads == pieces
    assert response.length is UNKNOWN_LENGTH  # chunked


@pytest_twisted.ensureDeferred
async def test_sse_events_with_delays_arrive_one_per_read(fake_upstream, http_pool):
    fake_upstream.script("GET", "/e", Reply(sse=[{"n": 1}, Pause(0.02), {"n": 2}]))
    response, reads = await fetch("GET", fake_upstream.url + "/e", http_pool)
    assert response.headers.getRawHeaders("content-type") == ["text/event-stream"]
    assert reads == [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n']


@pytest_twisted.ensureDeferred
async def test_content_length_framing_when_not_chunked(fake_upstream, http_pool):
    fake_upstream.script("GET", "/l", Reply(chunks=[b"ab", b"cd"], chunked=False))
    response, reads = await fetch("GET", fake_upstream.url + "/l", http_pool)
    assert response.length == 4
    assert b"".join(reads) == b"abcd"


@pytest_twisted.ensureDeferred
async def test_gzip_body_without_content_encoding_reaches_client_compressed(
    fake_upstream, http_pool
):
    fake_upstream.script(
        "GET", "/g", Reply(json={"upstream": "ok"}, gzip=True, content_encoding=False)
    )
    response, reads = await fetch("GET", fake_upstream.url + "/g", http_pool)
    body = b"".join(reads)
    assert body[:2] == b"\x1f\x8b"
    assert not any(response.headers.getRawHeaders("content-encoding", []))
    assert json.loads(gzip.decompress(body)) == {"upstream": "ok"}


@pytest_twisted.ensureDeferred
async def test_reset_mid_stream_gives_the_client_a_connection_error(fake_upstream, http_pool):
    fake_upstream.script(
        "GET", "/r", Reply(chunks=[b"data: one\n\n", b"data: two\n\n"], reset_after=14)
    )
    response = await treq.request("GET", fake_upstream.url + "/r", pool=http_pool, unbuffered=True)
    reads = []
    with pytest.raises(ResponseFailed):
        await treq.collect(response, reads.append)
    assert b"".join(reads) == b"data: one\n\ndat"
    rec = fake_upstream.last
    assert rec.outcome == "reset" and rec.bytes_sent == 14


@pytest_twisted.ensureDeferred
async def test_close_mid_body_with_content_length_is_a_data_loss(fake_upstream, http_pool):
    fake_upstream.script("GET", "/c", Reply(body=b"0123456789", close_after=5))
    response = await treq.request("GET", fake_upstream.url + "/c", pool=http_pool, unbuffered=True)
    reads = []
    with pytest.raises(ResponseFailed):
        await treq.collect(response, reads.append)
    assert b"".join(reads) == b"01234"
    assert fake_upstream.last.outcome == "closed"


@pytest_twisted.ensureDeferred
async def test_hang_after_first_event_then_client_leaves_is_recorded(fake_upstream, http_pool):
    fake_upstream.script("POST", "/h", Reply(sse=[{"first": 1}], hang=True))
    response = await treq.request("POST", fake_upstream.url + "/h", pool=http_pool, unbuffered=True)
    reader = _Reader()
    response.deliverBody(reader)
    assert await reader.first == b'data: {"first":1}\n\n'
    rec = fake_upstream.last
    assert rec.outcome is None
    left_at = reactor.seconds()
    reader.abort()
    assert await rec.when_done(timeout=1.0) == "client-gone"
    assert rec.disconnected and rec.disconnected_at - left_at < 1.0
    assert not rec.finished


@pytest_twisted.ensureDeferred
async def test_hang_before_headers_then_cancel_is_recorded(fake_upstream, http_pool):
    fake_upstream.script("GET", "/silent", Reply(hang=True))
    d = treq.request("GET", fake_upstream.url + "/silent", pool=http_pool)
    await fake_upstream.wait_requests(1, timeout=2)
    rec = fake_upstream.last
    assert rec.status is None  # not even a status line was sent
    d.cancel()
    with pytest.raises((defer.CancelledError, ResponseNeverReceived)):
        await d
    assert await rec.when_done(timeout=1.0) == "client-gone"


@pytest_twisted.ensureDeferred
async def test_delay_before_headers_is_honoured(fake_upstream, http_pool):
    fake_upstream.script("GET", "/d", Reply(json={}, delay=0.05))
    start = reactor.seconds()
    response, _ = await fetch("GET", fake_upstream.url + "/d", http_pool)
    assert response.code == 200 and reactor.seconds() - start >= 0.05


@pytest_twisted.ensureDeferred
async def test_responder_functions_see_the_request(fake_upstream, http_pool):
    fake_upstream.script("POST", "/f", lambda rec: Reply(json={"echo": rec.json["v"]}))
    fake_upstream.script("POST", "/f", lambda rec: 1 / 0)
    _, reads = await fetch("POST", fake_upstream.url + "/f", http_pool, json={"v": 5})
    broken, _ = await fetch("POST", fake_upstream.url + "/f", http_pool, json={"v": 5})
    assert json.loads(b"".join(reads)) == {"echo": 5}
    assert broken.code == 500
    assert fake_upstream.errors and fake_upstream.errors[0].check(ZeroDivisionError)
    fake_upstream.errors.clear()


@pytest_twisted.ensureDeferred
async def test_stop_drops_open_connections_and_marks_requests_stopped(http_pool):
    fake = FakeUpstream()
    fake.listen()
    fake.script("GET", "/h", Reply(sse=[], hang=True))
    response = await treq.request("GET", fake.url + "/h", pool=http_pool, unbuffered=True)
    reader = _Reader()
    response.deliverBody(reader)
    assert fake.open_connections == 1 and fake.connections_made == 1
    await fake.stop()
    assert fake.last.outcome == "stopped"
    await reader.done
    assert reader.reason.check(ResponseFailed)
    assert fake.open_connections == 0


@pytest_twisted.ensureDeferred
async def test_tunnel_answers_101_and_echoes_bytes(fake_upstream):
    fake_upstream.script("GET", "/ws", Tunnel())
    got = defer.Deferred()
    buf = bytearray()

    class Client(Protocol):
        def connectionMade(self):
            self.transport.write(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )

        def dataReceived(self, data):
            buf.extend(data)
            if b"\r\n\r\n" in buf and not getattr(self, "sent", False):
                self.sent = True
                self.transport.write(b"\x81\x02hi")
            if buf.endswith(b"\x81\x02hi"):
                got.callback(bytes(buf))

    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    proto = await connectProtocol(
        TCP4ClientEndpoint(reactor, "127.0.0.1", fake_upstream.port), Client()
    )
    data = await got
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data
    assert websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    rec = fake_upstream.last
    assert rec.upgraded and rec.tunnel_bytes == b"\x81\x02hi"
    proto.transport.loseConnection()
    assert await rec.when_done(timeout=1.0) == "client-gone"


def test_delays_follow_an_injected_clock_in_memory():
    from treq.testing import StubTreq

    clock = task.Clock()
    fake = FakeUpstream(clock=clock)
    fake.script("GET", "/slow", Reply(chunks=[b"a", (b"b", 5.0)]))
    stub = StubTreq(fake.resource)
    d = stub.get("http://fake/slow")
    stub.flush()
    response = d.result if hasattr(d, "result") else None
    assert response is not None and response.code == 200
    body = stub.content(response)
    stub.flush()
    assert not body.called  # "b" waits 5 s on the clock
    clock.advance(5)
    stub.flush()
    assert body.result == b"ab"


@pytest_twisted.ensureDeferred
async def test_repeat_body_pauses_under_backpressure_and_resumes(fake_upstream):
    unit = b"x" * 65536
    fake_upstream.script("GET", "/bulk", Reply(repeat=unit, repeat_count=2000))
    received = []

    class SlowClient(Protocol):
        def connectionMade(self):
            self.transport.write(b"GET /bulk HTTP/1.1\r\nHost: x\r\n\r\n")
            self.transport.pauseProducing()  # a client that stops reading

        def dataReceived(self, data):
            received.append(len(data))

    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", fake_upstream.port)
    client = await connectProtocol(endpoint, SlowClient())
    await fake_upstream.wait_requests(1)
    rec = fake_upstream.last
    await fake_upstream.wait_for(lambda: rec.pauses >= 1)
    stalled_at = rec.bytes_sent
    assert 0 < stalled_at < len(unit) * 2000
    client.transport.resumeProducing()
    await fake_upstream.wait_for(lambda: rec.bytes_sent > stalled_at)
    assert sum(received) > 0
    client.transport.abortConnection()
    assert await rec.when_done(timeout=1.0) == "client-gone"
