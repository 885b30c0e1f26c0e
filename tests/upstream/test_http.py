"""The shared client over real loopback sockets: what goes on the wire, compressed
answers with and without Content-Encoding, body caps, streams that end, stall or break,
and cancellation before the headers."""

from __future__ import annotations

import gzip

import pytest
import pytest_twisted
import zstandard
from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionRefusedError
from twisted.web.client import ResponseFailed

from cliproxy.credentials.model import Credential
from cliproxy.upstream import executor_for
from cliproxy.upstream.body import BodyTooLarge, read_body
from cliproxy.upstream.http import HeaderTimeout, UpstreamHTTP
from cliproxy.upstream.stream import StreamIdleTimeout, deliver_stream
from tests.upstream.servers import ClockedReactor, Origin, never_answer, reply, stream_then


class _Collected:
    """on_data / on_end sinks for deliver_stream, with a Deferred per event."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ended: defer.Deferred = defer.Deferred()
        self._data_waiter: defer.Deferred | None = None

    def on_data(self, data: bytes) -> None:
        self.chunks.append(data)
        if self._data_waiter is not None:
            d, self._data_waiter = self._data_waiter, None
            d.callback(data)

    def on_end(self, reason) -> None:
        self.reason = reason
        self.ended.callback(reason is None)

    def next_data(self) -> defer.Deferred:
        self._data_waiter = defer.Deferred()
        return self._data_waiter

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@pytest.fixture
def origin():
    server = Origin().listen()
    yield server
    server.port.stopListening()


def _http(**kw) -> UpstreamHTTP:
    return UpstreamHTTP(kw.pop("reactor", reactor), environ={}, connect_timeout=5, **kw)


async def _get(http, url, headers=None, **kw):
    return await http.request("GET", url, headers=headers or {}, **kw)


@pytest_twisted.ensureDeferred
async def test_post_sends_body_with_length_and_our_accept_encoding_only(origin):
    http = _http()
    try:
        response = await http.request(
            "POST",
            origin.url + "/v1/messages?beta=true",
            headers={"Accept-Encoding": "identity", "Content-Type": "application/json"},
            body=b'{"model":"m"}',
            proxy_url="direct",
            timeout_headers=10,
        )
        assert response.code == 200
        await read_body(response, 1024)
        seen = origin.seen[0]
        assert seen.method == b"POST"
        assert seen.uri == b"/v1/messages?beta=true"
        assert seen.body == b'{"model":"m"}'
        assert seen.header("content-length") == "13"
        # treq appends its own "gzip": the stream must still ask for identity only
        assert seen.header_values("accept-encoding") == ["identity"]
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_redirects_are_not_followed_and_cookies_are_not_replayed(origin):
    origin.scripts[b"/moved"] = reply(302, b"", {"Location": "/elsewhere", "Set-Cookie": "s=1"})
    http = _http()
    try:
        response = await _get(http, origin.url + "/moved")
        assert response.code == 302
        await read_body(response, 1024)
        response = await _get(http, origin.url + "/again")
        await read_body(response, 1024)
        assert [s.uri for s in origin.seen] == [b"/moved", b"/again"]
        assert origin.seen[1].header("cookie") is None
    finally:
        await http.close()


@pytest.mark.parametrize(
    "payload, headers",
    [
        (gzip.compress(b'{"a":1}'), {}),
        (zstandard.ZstdCompressor().compress(b'{"a":1}'), {}),
        (zstandard.ZstdCompressor().compress(b'{"a":1}'), {"Content-Encoding": "zstd"}),
        (gzip.compress(b'{"a":1}'), {"Content-Encoding": "gzip"}),
        (b'{"a":1}', {}),
    ],
    ids=["gzip-sniffed", "zstd-sniffed", "zstd-declared", "gzip-declared", "plain"],
)
@pytest_twisted.ensureDeferred
async def test_read_body_decodes_by_header_or_magic_bytes(origin, payload, headers):
    origin.scripts[b"/c"] = reply(200, payload, headers)
    http = _http()
    try:
        response = await _get(http, origin.url + "/c")
        assert await read_body(response, 1024) == b'{"a":1}'
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_read_body_over_the_cap_fails_and_drops_the_connection(origin):
    origin.scripts[b"/big"] = stream_then([b"x" * 50_000] * 4, "hang")
    http = _http()
    try:
        response = await _get(http, origin.url + "/big")
        with pytest.raises(BodyTooLarge):
            await read_body(response, 64 * 1024)
        await origin.seen[0].gone  # the origin saw us leave
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_gzip_bomb_without_header_is_capped(origin):
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 64 * 1024
    origin.scripts[b"/bomb"] = reply(200, bomb)
    http = _http()
    try:
        response = await _get(http, origin.url + "/bomb")
        with pytest.raises(BodyTooLarge):
            await read_body(response, 1024 * 1024)
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_stream_delivers_chunks_and_ends_cleanly(origin):
    origin.scripts[b"/s"] = stream_then([b"data: 1\n\n", b"data: 2\n\n"], "finish")
    http = _http()
    try:
        response = await _get(http, origin.url + "/s")
        sink = _Collected()
        deliver_stream(response, sink.on_data, sink.on_end, idle_timeout=30, clock=task.Clock())
        assert await sink.ended is True
        assert sink.data == b"data: 1\n\ndata: 2\n\n"
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_stream_reset_mid_way_is_reported_as_a_failure(origin):
    origin.scripts[b"/s"] = stream_then([b"data: 1\n\n"], "reset")
    http = _http()
    try:
        response = await _get(http, origin.url + "/s")
        sink = _Collected()
        deliver_stream(response, sink.on_data, sink.on_end, idle_timeout=30, clock=task.Clock())
        assert await sink.ended is False
        assert sink.reason.check(ResponseFailed)
        assert sink.data == b"data: 1\n\n"
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_stream_idle_timeout_reports_and_closes_the_upstream(origin):
    origin.scripts[b"/s"] = stream_then([b"data: first\n\n"], "hang")
    http = _http()
    clock = task.Clock()
    try:
        response = await _get(http, origin.url + "/s")
        sink = _Collected()
        first = sink.next_data()
        reader = deliver_stream(response, sink.on_data, sink.on_end, idle_timeout=5, clock=clock)
        await first
        clock.advance(4.9)
        assert not sink.ended.called
        clock.advance(0.2)
        assert await sink.ended is False
        assert sink.reason.check(StreamIdleTimeout)
        assert reader.ended
        await origin.seen[0].gone  # the upstream connection was dropped
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_gzip_stream_without_header_is_decoded_even_when_split(origin):
    packed = gzip.compress(b"data: a\n\ndata: b\n\n")
    origin.scripts[b"/s"] = stream_then([packed[:1], packed[1:7], packed[7:]], "finish")
    http = _http()
    try:
        response = await _get(http, origin.url + "/s")
        sink = _Collected()
        deliver_stream(response, sink.on_data, sink.on_end, idle_timeout=30, clock=task.Clock())
        assert await sink.ended is True
        assert sink.data == b"data: a\n\ndata: b\n\n"
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_stopping_a_stream_closes_the_upstream(origin):
    origin.scripts[b"/s"] = stream_then([b"data: 1\n\n"], "hang")
    http = _http()
    try:
        response = await _get(http, origin.url + "/s")
        sink = _Collected()
        first = sink.next_data()
        reader = deliver_stream(response, sink.on_data, sink.on_end, idle_timeout=None, clock=None)
        await first
        reader.stop()  # the client left
        assert await sink.ended is False
        assert sink.reason.check(defer.CancelledError)
        await origin.seen[0].gone
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_cancel_before_headers_aborts_the_connection(origin):
    origin.scripts[b"/slow"] = never_answer
    http = _http()
    try:
        arrived = origin.next_request()
        d = http.request("POST", origin.url + "/slow", headers={}, body=b"{}", timeout_headers=30)
        seen = await arrived
        d.cancel()
        with pytest.raises(defer.CancelledError):
            await d
        await seen.gone
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_header_timeout_cancels_and_drops_the_connection(origin):
    origin.scripts[b"/slow"] = never_answer
    clock = task.Clock()
    http = _http(reactor=ClockedReactor(clock))
    try:
        arrived = origin.next_request()
        d = http.request("POST", origin.url + "/slow", headers={}, body=b"{}", timeout_headers=20)
        seen = await arrived
        outcome = []
        d.addBoth(lambda r: outcome.append(r) or r)
        clock.advance(19)
        assert outcome == []
        clock.advance(2)
        with pytest.raises(HeaderTimeout):
            await d
        await seen.gone
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_unreachable_upstream_fails_fast():
    http = _http()
    try:
        with pytest.raises(ConnectionRefusedError):
            await http.request("POST", "http://127.0.0.1:1/x", headers={}, body=b"{}")
    finally:
        await http.close()


def _cred(kind: str, provider: str, base: str) -> Credential:
    return Credential(
        id=f"{kind}:t",
        provider=provider,
        kind=kind,
        api_key="sk-upstream-0001",
        base_url=base,
        headers=(("X-Extra", "1"),),
    )


@pytest.mark.parametrize(
    "kind, provider, body, path, auth",
    [
        ("claude-api-key", "claude", {"messages": []}, b"/v1/messages?beta=true", "authorization"),
        (
            "gemini-api-key",
            "gemini",
            {"contents": []},
            b"/v1beta/models/m-1:streamGenerateContent?alt=sse",
            "x-goog-api-key",
        ),
        (
            "vertex-api-key",
            "vertex",
            {"contents": []},
            b"/v1/publishers/google/models/m-1:streamGenerateContent?alt=sse",
            "x-goog-api-key",
        ),
        ("codex-api-key", "codex", {"input": []}, b"/responses", "authorization"),
        ("openai-compatibility", "local", {"messages": []}, b"/chat/completions", "authorization"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_each_executor_sends_to_its_path_with_its_key_and_never_the_clients(
    origin, kind, provider, body, path, auth
):
    origin.default = stream_then([b"data: {}\n\n"], "finish")
    http = _http()
    cred = _cred(kind, provider, origin.url)
    executor = executor_for(cred)
    try:
        call = executor.build(
            cred,
            model="m-1",
            body=body,
            stream=True,
            client_headers={"Authorization": "Bearer client-key", "x-api-key": "client-key"},
        )
        response = await executor.send(http, call, "", 10)
        assert response.code == 200
        await read_body(response, 1024)
        seen = origin.seen[0]
        assert seen.uri == path
        assert "sk-upstream-0001" in seen.header(auth)
        assert seen.header("x-extra") == "1"
        assert seen.header_values("accept-encoding") == ["identity"]
        for values in seen.headers.values():
            assert not any(b"client-key" in v for v in values)
    finally:
        await http.close()
