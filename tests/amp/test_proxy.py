"""PRX-*: the reverse proxy to the Amp upstream (amp.md §2.3), over loopback sockets."""

from __future__ import annotations

import gzip
import json

import pytest
import pytest_twisted
from twisted.logger import LogLevel, capturedLogs

from cliproxy.amp import AmpConfigError, AmpModule
from cliproxy.amp.module import check_upstream_url
from cliproxy.config import AmpConfig
from cliproxy.web.proxy import is_event_stream
from tests.amp.kit import (
    BEARER,
    UPSTREAM_KEY,
    amp_config,
    call,
    isolate_secrets,
    make_core,
    raw_connect,
    wire_answer,
)
from tests.fakes import FakeAmp, Pause, Reply
from tests.fakes.server import wait_until
from tests.serving_kit import CLIENT_KEY
from tests.web.httpwire import Wire, request_bytes


def test_PRX_01_valid_url_builds_a_proxy_invalid_fails():
    assert check_upstream_url("https://ampcode.com/") == "https://ampcode.com"
    for bad in ("://invalid", "ampcode.com", "ftp://x", "http://"):
        with pytest.raises(AmpConfigError):
            check_upstream_url(bad)

    module = AmpModule(make_core())
    module.register(AmpConfig(upstream_url="https://amp.example.com/"))
    assert module.enabled and module.proxy is not None
    assert module.upstream_url == "https://amp.example.com"
    with pytest.raises(AmpConfigError):
        AmpModule(make_core()).register(AmpConfig(upstream_url="://invalid"))


@pytest_twisted.ensureDeferred
async def test_PRX_02_upstream_gets_the_upstream_key_in_both_headers(start_fake, start_proxy):
    amp = start_fake(FakeAmp, keys={UPSTREAM_KEY})
    proxy = start_proxy(amp_config(amp.url))
    status, _, body = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200, body
    rec = amp.last
    assert rec.header("x-api-key") == UPSTREAM_KEY
    assert rec.header("authorization") == f"Bearer {UPSTREAM_KEY}"


@pytest_twisted.ensureDeferred
async def test_PRX_03_empty_secret_injects_nothing(start_fake, start_proxy, tmp_path):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, key=""))
    isolate_secrets(proxy.app.amp, tmp_path, environ={})
    status, _, _ = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200
    rec = amp.last
    assert rec.header("x-api-key") is None
    assert rec.header("authorization") in (None, "Bearer ", "Bearer")


@pytest_twisted.ensureDeferred
async def test_PRX_04_client_credentials_never_reach_the_upstream(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    headers = {
        "Authorization": f"Bearer {CLIENT_KEY}",
        "X-Api-Key": CLIENT_KEY,
        "X-Goog-Api-Key": "placeholder",
    }
    query = f"?key={CLIENT_KEY}&key=keep&auth_token={CLIENT_KEY}&foo=bar"
    status, _, _ = await call("GET", proxy.url + "/api/threads" + query, headers=headers)
    assert status == 200
    rec = amp.last
    assert rec.uri == b"/api/threads?key=keep&foo=bar"
    assert rec.header("x-goog-api-key") is None
    assert rec.header("x-api-key") == UPSTREAM_KEY
    assert rec.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert CLIENT_KEY not in json.dumps(rec.headers) + rec.uri.decode()


@pytest_twisted.ensureDeferred
async def test_PRX_05_per_client_upstream_key(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    extra = "upstream-api-keys:\n  - upstream-api-key: u1\n    api-keys: [k1]\n"
    text = amp_config(amp.url, extra=extra).replace(
        f"api-keys: [{CLIENT_KEY}]", "api-keys: [k1, k2]"
    )
    proxy = start_proxy(text)
    await call("GET", proxy.url + "/api/user", headers={"Authorization": "Bearer k1"})
    assert amp.last.header("x-api-key") == "u1"
    assert amp.last.header("authorization") == "Bearer u1"
    await call("GET", proxy.url + "/api/user", headers={"Authorization": "Bearer k2"})
    assert amp.last.header("x-api-key") == UPSTREAM_KEY


@pytest_twisted.ensureDeferred
async def test_PRX_06_unreachable_upstream_is_502_json(start_proxy):
    proxy = start_proxy(amp_config("http://127.0.0.1:1"))
    status, headers, body = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 502
    assert headers.getRawHeaders(b"content-type") == [b"application/json"]
    assert json.loads(body) == {
        "error": "amp_upstream_proxy_error",
        "message": "Failed to reach Amp upstream",
    }


@pytest_twisted.ensureDeferred
async def test_PRX_07_client_cancellation_writes_nothing_and_is_not_an_error(
    start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/threads", Reply(json={"late": True}, delay=30))
    proxy = start_proxy(amp_config(amp.url))
    wire = Wire(proxy.site)
    with capturedLogs() as events:
        wire.send(request_bytes("GET", "/api/threads", BEARER))
        await amp.wait_requests(1)
        wire.close()
        await wait_until(lambda: amp.last.outcome is not None, 3)
    assert wire.transport.value() == b""
    assert amp.last.outcome == "client-gone"
    assert not [e for e in events if e.get("log_level") in (LogLevel.error, LogLevel.critical)]
    assert not [e for e in events if "log_failure" in e]


def gzipped(obj) -> bytes:
    return gzip.compress(json.dumps(obj).encode())


GZ = gzipped({"upstream": "ok"})
CASES = [
    ("valid gzip", Reply(body=GZ, content_type="application/json"), b'{"upstream": "ok"}'),
    ("truncated gzip", Reply(body=GZ[:10], content_type="application/json"), GZ[:10]),
    (
        "magic then garbage",
        Reply(body=b"\x1f\x8bnot gzip at all", content_type="text/plain"),
        b"\x1f\x8bnot gzip at all",
    ),
    ("plain text", Reply(body=b"just text", content_type="text/plain"), b"just text"),
    ("empty", Reply(body=b"", content_type="text/plain"), b""),
    ("single byte", Reply(body=b"\x1f", content_type="text/plain"), b"\x1f"),
    (
        "gzip on a 404",
        Reply(status=404, body=GZ, content_type="application/json"),
        b'{"upstream": "ok"}',
    ),
]


@pytest.mark.parametrize("name,reply,expected", CASES, ids=[c[0] for c in CASES])
@pytest_twisted.ensureDeferred
async def test_PRX_08_gzip_without_content_encoding(start_fake, start_proxy, name, reply, expected):
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/meta", reply)
    proxy = start_proxy(amp_config(amp.url))
    answer = await wire_answer(proxy.site, "GET", "/api/meta", BEARER)
    assert answer.status == reply.status
    assert answer.body == expected
    assert answer.header("content-encoding") is None
    assert int(answer.header("content-length")) == len(expected)


@pytest_twisted.ensureDeferred
async def test_PRX_08_labelled_gzip_is_not_second_guessed(start_fake, start_proxy):
    """With `Content-Encoding: gzip` the body is not sniffed; the client gets the same
    content (treq undoes the labelled coding and says so by dropping the header)."""
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/meta", Reply(json={"labelled": 1}, gzip=True))
    proxy = start_proxy(amp_config(amp.url))
    status, headers, body = await call("GET", proxy.url + "/api/meta", headers=BEARER)
    if any(headers.getRawHeaders(b"content-encoding") or []):
        body = gzip.decompress(body)
    assert json.loads(body) == {"labelled": 1}


@pytest_twisted.ensureDeferred
async def test_PRX_09_content_length_is_the_decompressed_size(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    payload = {"data": "x" * 5000}
    amp.script("GET", "/api/meta", Reply(body=gzipped(payload), content_type="application/json"))
    proxy = start_proxy(amp_config(amp.url))
    answer = await wire_answer(proxy.site, "GET", "/api/meta", BEARER)
    assert answer.status == 200
    assert int(answer.header("content-length")) == len(json.dumps(payload)) == len(answer.body)
    assert answer.header("transfer-encoding") is None


@pytest_twisted.ensureDeferred
async def test_PRX_10_sse_is_streamed_never_buffered(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    first = b'data: {"n":1}\n\n'
    amp.script(
        "GET",
        "/api/telemetry",
        Reply(sse=[first, Pause(30), b'data: {"n":2}\n\n']),
    )
    # a gzip-looking SSE body is passed through, not sniffed
    amp.script(
        "GET",
        "/api/otel",
        Reply(chunks=[b"\x1f\x8b", b"data: x\n\n"], content_type="text/event-stream"),
    )
    proxy = start_proxy(amp_config(amp.url))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(request_bytes("GET", "/api/telemetry", BEARER))
    await wait_until(lambda: first in client.data, 3)
    assert b"text/event-stream" in client.data
    assert amp.last.outcome is None  # the upstream is still sending
    client.transport.abortConnection()
    status, _, body = await call("GET", proxy.url + "/api/otel", headers=BEARER)
    assert body == b"\x1f\x8bdata: x\n\n"


def test_PRX_11_only_event_streams_count_as_streaming():
    from twisted.web.http_headers import Headers

    assert is_event_stream(Headers({b"content-type": [b"text/event-stream; charset=utf-8"]}))
    for headers in (
        {b"transfer-encoding": [b"chunked"]},
        {b"content-type": [b"application/json"]},
        {},
    ):
        assert not is_event_stream(Headers(headers))


@pytest_twisted.ensureDeferred
async def test_PRX_11_chunked_json_is_decompressed(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    body = gzipped({"threads": [1, 2, 3]})
    amp.script(
        "GET",
        "/api/threads",
        Reply(
            chunks=[body[:7], body[7:20], body[20:]],
            content_type="application/json",
            chunked=True,
            chunk_delay=0.005,
        ),
    )
    proxy = start_proxy(amp_config(amp.url))
    answer = await wire_answer(proxy.site, "GET", "/api/threads", BEARER)
    assert answer.json() == {"threads": [1, 2, 3]}
    assert int(answer.header("content-length")) == len(answer.body)


@pytest_twisted.ensureDeferred
async def test_PRX_12_round_trip_gzip_and_plain(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script(
        "POST", "/api/internal", Reply(json={"upstream": "ok"}, gzip=True, content_encoding=False)
    )
    amp.script("POST", "/api/internal", Reply(json={"plain": True}))
    proxy = start_proxy(amp_config(amp.url))
    url = proxy.url + "/api/internal?getUserInfo"
    body = {"method": "getUserInfo", "params": {}}
    _, _, first = await call("POST", url, headers=BEARER, json_body=body)
    assert json.loads(first) == {"upstream": "ok"}
    _, _, second = await call("POST", url, headers=BEARER, json_body=body)
    assert second == b'{"plain":true}'
    assert amp.last.json == body


@pytest_twisted.ensureDeferred
async def test_PRX_14_host_rewritten_and_fingerprints_scrubbed(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    sent = {
        **BEARER,
        "X-Forwarded-For": "1.2.3.4",
        "X-Forwarded-Host": "evil",
        "X-Forwarded-Proto": "https",
        "X-Real-IP": "1.2.3.4",
        "Forwarded": "for=1.2.3.4",
        "Via": "1.1 someproxy",
        "X-Title": "app",
        "X-Stainless-Lang": "js",
        "X-Stainless-Os": "Linux",
        "Referer": "https://x",
        "Http-Referer": "https://y",
        "Sec-Ch-Ua": "chrome",
        "Sec-Ch-Ua-Platform": "linux",
        "Sec-Fetch-Mode": "cors",
        "Priority": "u=1",
        "Accept-Encoding": "br, zstd",
        "Anthropic-Beta": "context-1m-2025-08-07,other",
        "X-Amp-Client-Type": "cli",
    }
    await call("GET", proxy.url + "/api/user", headers=sent)
    rec = amp.last
    assert rec.header("host") == f"127.0.0.1:{amp.port}"
    gone = [
        k for k in sent if k.lower() not in ("authorization", "anthropic-beta", "x-amp-client-type")
    ]
    for name in gone:
        if name.lower() == "accept-encoding":
            assert "br" not in (rec.header(name) or "")  # ours, not the client's
        else:
            assert rec.header(name) is None, name
    assert rec.header("anthropic-beta") == "context-1m-2025-08-07,other"
    assert rec.header("x-amp-client-type") == "cli"


@pytest_twisted.ensureDeferred
async def test_PRX_15_secret_source_error_warns_and_proxies_without_auth(
    start_fake, start_proxy, tmp_path
):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, key=""))
    isolate_secrets(proxy.app.amp, tmp_path, environ={})
    (tmp_path / "secrets.json").write_text("this is not json")
    with capturedLogs() as events:
        status, _, _ = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200
    assert amp.last.header("x-api-key") is None
    warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
    assert any("continuing without auth" in e["log_format"] for e in warnings)


@pytest_twisted.ensureDeferred
async def test_PRX_16_gzip_bomb_is_bounded_and_passed_through(start_fake, start_proxy, monkeypatch):
    import cliproxy.web.proxy as proxy_module

    monkeypatch.setattr(proxy_module, "MAX_GZIP_OUTPUT", 64 * 1024)
    bomb = gzip.compress(b"\0" * (1024 * 1024))
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/meta", Reply(body=bomb, content_type="application/octet-stream"))
    proxy = start_proxy(amp_config(amp.url))
    status, _, body = await call("GET", proxy.url + "/api/meta", headers=BEARER)
    assert status == 200 and body == bomb


@pytest_twisted.ensureDeferred
async def test_slow_client_pauses_the_upstream(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script(
        "GET",
        "/api/threads",
        Reply(body=b"[", repeat=b"x" * 65536, repeat_count=200, content_type="text/plain"),
    )
    proxy = start_proxy(amp_config(amp.url))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.pauseProducing()  # the client stops reading
    client.transport.write(request_bytes("GET", "/api/threads", BEARER))
    await wait_until(lambda: amp.requests and amp.last.pauses > 0, 5)
    sent_before = amp.last.bytes_sent
    assert sent_before < 200 * 65536
    client.transport.resumeProducing()
    await wait_until(lambda: len(client.data) > 200 * 65536, 10)
    assert amp.last.outcome == "finished"


@pytest_twisted.ensureDeferred
async def test_upstream_dying_mid_body_truncates_the_client_answer(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script(
        "GET", "/api/threads", Reply(body=b"y" * 50000, reset_after=1000, content_type="text/plain")
    )
    proxy = start_proxy(amp_config(amp.url))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(request_bytes("GET", "/api/threads", BEARER))
    await client.closed
    head, _, body = client.data.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0]
    assert b"content-length: 50000" in head.lower()
    assert len(body) < 50000


@pytest_twisted.ensureDeferred
async def test_client_leaving_mid_stream_drops_the_upstream(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/telemetry", Reply(sse=[b"data: 1\n\n", Pause(30), b"data: 2\n\n"]))
    proxy = start_proxy(amp_config(amp.url))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(request_bytes("GET", "/api/telemetry", BEARER))
    await wait_until(lambda: b"data: 1" in client.data, 3)
    client.transport.abortConnection()
    await wait_until(lambda: amp.last.outcome is not None, 3)
    assert amp.last.outcome == "client-gone"
    await wait_until(lambda: not proxy.site.active, 3)


@pytest_twisted.ensureDeferred
async def test_silent_upstream_times_out(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script("GET", "/api/threads", Reply(delay=30))
    amp.script("GET", "/api/telemetry", Reply(sse=[b"data: 1\n\n"], hang=True))
    text = amp_config(amp.url) + (
        "upstream-timeouts:\n  headers-seconds: 0.2\nstreaming:\n  idle-timeout-seconds: 0.2\n"
    )
    proxy = start_proxy(text)
    status, _, body = await call("GET", proxy.url + "/api/threads", headers=BEARER)
    assert status == 504 and json.loads(body)["error"] == "amp_upstream_timeout"
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(request_bytes("GET", "/api/telemetry", BEARER))
    await client.closed  # cut: a truncated stream must look truncated
    assert b"data: 1" in client.data and not client.data.endswith(b"0\r\n\r\n")


@pytest_twisted.ensureDeferred
async def test_large_management_body_is_streamed_from_the_spooled_file(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    payload = bytes(range(256)) * (3 * 4096)  # 3 MiB: Twisted spools it to a temp file
    status, _, body = await call(
        "POST",
        proxy.url + "/api/threads/upload",
        headers={**BEARER, "Content-Type": "application/octet-stream"},
        body=payload,
    )
    assert status < 500, body
    rec = amp.last
    assert rec.raw_body == payload
    assert rec.header("content-length") == str(len(payload))
