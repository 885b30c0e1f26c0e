"""reliability.md §4, upstream faults, non-streaming and streaming (scenarios 23-37), over
real sockets: cliproxy on 127.0.0.1 in front of fake upstreams."""

from __future__ import annotations

import gzip
import json
import socket

import pytest_twisted
from twisted.internet import defer
from twisted.logger import LogLevel, capturedLogs

from tests.fakes import (
    FakeClaude,
    FakeOpenAI,
    Pause,
    Reply,
    Turn,
    chat_chunks,
    claude_events,
)
from tests.reliability.kit import call, request_bytes, sse_data
from tests.reliability.test_streaming import until
from tests.serving_kit import config_text, providers

HI = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-fake", "messages": HI}
STREAM = {**BODY, "stream": True}


def two_oai_keys(oai, extra: str = "") -> str:
    return config_text(
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {oai.url}/v1\n"
        "    api-key-entries: [{api-key: sk-a}, {api-key: sk-b}]\n"
        "    models: [{name: gpt-fake, alias: gpt-fake}]\n",
        extra,
    )


@pytest_twisted.ensureDeferred
async def test_scenario_23_429_rests_one_key_then_all_then_success_clears(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI, keys={"sk-a", "sk-b"})
    proxy = start_proxy(two_oai_keys(oai))
    oai.script_error(429, "slow down", retry_after=30, key="sk-a")
    oai.script_error(429, "slow down", retry_after=30, key="sk-b")
    a = await call(proxy.url, "POST", CHAT, BODY)  # sk-a 429, sk-b 429
    assert a.status == 429
    a = await call(proxy.url, "POST", CHAT, BODY)  # both resting: no upstream call
    err = a.json()["error"]
    assert (a.status, err["code"]) == (429, "model_cooldown")
    assert 25 <= int(a.header("retry-after")) <= 36
    assert "is rate-limited (HTTP 429)" in err["message"]
    assert len(oai.requests) == 2
    proxy.clock.advance(40)
    assert (await call(proxy.url, "POST", CHAT, BODY)).status == 200
    assert proxy.app.pool.states() == [] or all(
        s.until <= proxy.clock.seconds() for s in proxy.app.pool.states()
    )


@pytest_twisted.ensureDeferred
async def test_scenario_24_absurd_retry_after_is_clamped(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script_error(429, "tomorrow-ish", retry_after=1587827)
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 429 and int(a.header("retry-after")) <= 24 * 3600
    proxy.clock.advance(24 * 3600 + 1)
    assert (await call(proxy.url, "POST", CHAT, BODY)).status == 200  # probing again


@pytest_twisted.ensureDeferred
async def test_scenario_25_5xx_fails_over_and_rests_briefly_4xx_is_not_retried(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI, keys={"sk-a", "sk-b"})
    proxy = start_proxy(two_oai_keys(oai))
    oai.script_error(500, "boom", key="sk-a")
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 200 and [r.key for r in oai.requests] == ["sk-a", "sk-b"]
    rest = [s for s in proxy.app.pool.states() if s.until > proxy.clock.seconds()]
    assert len(rest) == 1 and rest[0].until - proxy.clock.seconds() <= 2.0  # not a minute
    before = len(oai.requests)
    oai.script_error(400, "bad request", key="sk-a")
    oai.script_error(400, "bad request", key="sk-b")
    proxy.clock.advance(3)
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 400 and len(oai.requests) == before + 1  # no blind retry


@pytest_twisted.ensureDeferred
async def test_scenario_26_connection_refused_is_a_json_502_quickly(start_proxy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    text = config_text(
        "openai-compatibility:\n  - name: dead\n"
        f"    base-url: http://127.0.0.1:{port}/v1\n"
        "    api-key-entries: [{api-key: sk-a}]\n"
        "    models: [{name: gpt-fake}]\n"
    )
    proxy = start_proxy(text)
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 502 and a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_27_silent_upstream_times_out_and_the_reactor_stays_responsive(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", "/v1/chat/completions", Reply(hang=True))
    proxy = start_proxy(providers(oai=oai, extra="upstream-timeouts: {headers-seconds: 0.5}\n"))
    pending = defer.ensureDeferred(call(proxy.url, "POST", CHAT, BODY))
    health = await call(proxy.url, "GET", "/healthz")
    assert health.status == 200 and not pending.called
    a = await pending
    assert a.status == 504 and a.header("content-type") == "application/json"


@pytest_twisted.ensureDeferred
async def test_scenario_28_gzip_without_header_is_decoded_and_a_bomb_is_capped(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    answer = json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "zipped"}}],
        }
    ).encode()
    oai.script(
        "POST",
        "/v1/chat/completions",
        Reply(body=gzip.compress(answer), content_type="application/json"),
    )
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 200 and a.json()["choices"][0]["message"]["content"] == "zipped"
    bomb = gzip.compress(b"{" + b" " * (300 * 1024 * 1024))
    oai.script("POST", "/v1/chat/completions", Reply(body=bomb, content_type="application/json"))
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 502 and a.header("content-type") == "application/json"


@pytest_twisted.ensureDeferred
async def test_scenario_29_gzip_error_bodies_are_decoded_before_classifying(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    error = {"error": {"message": "quota gone", "type": "insufficient_quota"}}
    oai.script("POST", "/v1/chat/completions", Reply(status=429, json=error, gzip=True))
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 429
    assert a.json()["error"]["message"] == "quota gone"  # not mojibake


@pytest_twisted.ensureDeferred
async def test_scenario_30_truncated_body_is_never_a_complete_200(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    body = b'{"id": "c", "choices": [' + b" " * 100000 + b"]}"
    reply = Reply(body=body, content_type="application/json", chunked=False, close_after=40000)
    oai.script("POST", "/v1/chat/completions", reply)
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, BODY)
    assert a.status == 502  # a whole JSON answer is parsed: a short one is an error
    assert "unreadable answer" in a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_31_reset_mid_sse_ends_with_an_error_event_and_no_retry(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="a fairly long answer here"), "gpt-fake")
    oai.script("POST", "/v1/chat/completions", Reply(sse=events, reset_after=300))
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, STREAM)
    last = json.loads(sse_data(a.body)[-1])
    assert "upstream connection lost mid-stream" in last["error"]["message"]
    assert len(oai.requests) == 1


@pytest_twisted.ensureDeferred
async def test_scenario_32_malformed_sse_is_reassembled_and_empty_frames_dropped(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="split across reads"), "gpt-fake")
    junk = [b": ping\r\n\r\n", b"data:\r\n\r\n", b'data: {"a":\r\n\r\n']
    sse = events[:2] + junk + events[2:]
    oai.script(
        "POST",
        "/v1/chat/completions",
        Reply(sse=sse, sse_newline="\r\n", split_every=7, chunk_delay=0.001),
    )
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, STREAM)
    frames = sse_data(a.body)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "split across reads"


@pytest_twisted.ensureDeferred
async def test_scenario_33_after_done_dropped_and_a_missing_done_synthesised_once(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="hi"), "gpt-fake")
    oai.script("POST", "/v1/chat/completions", Reply(sse=events + [events[1]]))
    oai.script("POST", "/v1/chat/completions", Reply(sse=events[:-1]))  # no [DONE]
    proxy = start_proxy(providers(oai=oai))
    for _ in range(2):
        frames = sse_data((await call(proxy.url, "POST", CHAT, STREAM)).body)
        assert frames.count("[DONE]") == 1 and frames[-1] == "[DONE]"


@pytest_twisted.ensureDeferred
async def test_scenario_34_silent_stream_ends_with_an_error_event_keepalives_meanwhile(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    events = claude_events(Turn(text="hi"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events[:3] + [Pause(5)] + events[3:]))
    extra = "streaming: {idle-timeout-seconds: 0.6, keepalive-seconds: 0.2}\n"
    proxy = start_proxy(providers(claude=claude, extra=extra))
    body = {"model": "claude-fake", "messages": HI, "stream": True, "max_tokens": 5}
    a = await call(proxy.url, "POST", "/v1/messages", body)
    assert b": keep-alive" in a.body  # comments while the upstream thinks
    last = json.loads(sse_data(a.body)[-1])
    assert last["type"] == "error" and "sent nothing for 0.6s" in last["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_35_client_leaving_mid_stream_cancels_upstream_quietly(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="x " * 50), "gpt-fake")
    oai.script("POST", "/v1/chat/completions", Reply(sse=events, chunk_delay=0.02))
    proxy = start_proxy(providers(oai=oai))
    with capturedLogs() as logs:
        sock = socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])))
        sock.sendall(request_bytes("POST", CHAT, STREAM))
        await until(lambda: oai.requests and oai.last.bytes_sent > 0)
        sock.close()
        await until(lambda: oai.last.outcome is not None)
        await until(lambda: not proxy.site.active)
    assert oai.last.outcome in ("client-gone", "reset", "closed")
    assert proxy.app.pool.states() == []  # no cooldown for a client leaving
    assert not [e for e in logs if e["log_level"] >= LogLevel.error]


@pytest_twisted.ensureDeferred
async def test_scenario_36_slow_reader_pauses_the_upstream(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    chunk = json.dumps(chat_chunks(Turn(text="y" * 2000), "gpt-fake")[1].data)
    reply = Reply(sse=[], repeat=b"data: " + chunk.encode() + b"\n\n", repeat_count=20000)
    oai.script("POST", "/v1/chat/completions", reply)
    proxy = start_proxy(providers(oai=oai))
    sock = socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(request_bytes("POST", CHAT, STREAM))
    try:
        await until(lambda: oai.requests and oai.last.pauses > 0, timeout=10)
    finally:
        sock.close()
    await until(lambda: oai.last.outcome is not None)


@pytest_twisted.ensureDeferred
async def test_scenario_37_amp_stream_keeps_tool_names_as_the_request_advertised(
    start_fake, start_proxy
):
    """The Amp rewriter's part (signatures, casing) has its own suite in tests/amp; here the
    socket path: a streamed tool_use for a `Bash` tool keeps the advertised name."""
    claude = start_fake(FakeClaude)
    from tests.fakes import ToolCall

    turn = Turn(tool_calls=[ToolCall("Bash", {"cmd": "ls"})])
    claude.script("POST", "/v1/messages", Reply(sse=claude_events(turn, "claude-fake-1")))
    proxy = start_proxy(providers(claude=claude))
    body = {
        "model": "claude-fake",
        "max_tokens": 50,
        "stream": True,
        "messages": HI,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
    }
    a = await call(proxy.url, "POST", "/api/provider/anthropic/v1/messages", body)
    assert a.status == 200
    starts = [json.loads(f) for f in sse_data(a.body) if '"content_block_start"' in f]
    assert any(s["content_block"].get("name") == "Bash" for s in starts)
