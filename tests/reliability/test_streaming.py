"""Issue 15 item 4: empty/invalid upstream SSE frames never reach the client, and a stream
cut by shutdown or by an upstream failure after the first byte ends with a terminal error
event in the client's format."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from cliproxy.service import Drain
from cliproxy.web.relay import IStreamEnd
from tests.fakes import FakeClaude, FakeOpenAI, Pause, Reply, Turn, chat_chunks, claude_events
from tests.reliability.kit import call, exchange, request_bytes, sse_data
from tests.serving_kit import providers

HI = [{"role": "user", "content": "hi"}]
JUNK = [
    b"data:\n\n",
    b"data: \n\n",
    b'data: {"truncated":\n\n',
    b"event: ping\n\n",
    b"data: hi\n\n",
]


def chat_stream(model: str) -> dict:
    return {"model": model, "messages": HI, "stream": True}


async def until(condition, timeout: float = 5.0) -> None:
    """Wait for socket I/O to make `condition()` true (polling, not a fixed sleep)."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition never became true")


def interleave(events: list, junk: list[bytes]) -> list:
    out: list = []
    for i, event in enumerate(events):
        out.append(event)
        out.append(junk[i % len(junk)])
    return out


@pytest_twisted.ensureDeferred
async def test_same_format_stream_drops_empty_and_invalid_frames(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="hello there"), "gpt-fake")
    oai.script("POST", "/v1/chat/completions", Reply(sse=interleave(events, JUNK)))
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", "/v1/chat/completions", chat_stream("gpt-fake"))
    frames = sse_data(a.body)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]  # what the OpenAI SDK does to each frame
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "hello there"


@pytest_twisted.ensureDeferred
async def test_translated_stream_drops_empty_and_invalid_frames(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    events = claude_events(Turn(text="hello there"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=interleave(events, JUNK)))
    proxy = start_proxy(providers(claude=claude))
    a = await call(proxy.url, "POST", "/v1/chat/completions", chat_stream("claude-fake"))
    frames = sse_data(a.body)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello there"


@pytest_twisted.ensureDeferred
async def test_upstream_reset_after_first_byte_ends_with_a_terminal_error_event(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    events = claude_events(Turn(text="hello there, a long answer"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events[:4] + [Pause(0.05)], reset_after=400))
    proxy = start_proxy(providers(claude=claude))
    a = await call(
        proxy.url, "POST", "/v1/messages", {"model": "claude-fake", "messages": HI, "stream": True}
    )
    assert a.status == 200
    last = json.loads(sse_data(a.body)[-1])
    assert last["type"] == "error"
    assert "upstream connection lost mid-stream" in last["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_shutdown_after_grace_ends_open_streams_with_a_terminal_event(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    claude = start_fake(FakeClaude)
    oai.script(
        "POST", "/v1/chat/completions", Reply(sse=chat_chunks(Turn(text="hi"), "g")[:2], hang=True)
    )
    claude.script(
        "POST", "/v1/messages", Reply(sse=claude_events(Turn(text="hi"), "c")[:3], hang=True)
    )
    proxy = start_proxy(providers(oai=oai, claude=claude))
    answers = [
        defer.ensureDeferred(exchange(proxy.url, request_bytes("POST", path, chat_stream(model))))
        for path, model in (("/v1/chat/completions", "gpt-fake"), ("/v1/messages", "claude-fake"))
    ]
    await until(lambda: len(proxy.site.active) == 2 and all(f.requests for f in (oai, claude)))
    await until(lambda: all(r.bytes_sent for r in (oai.last, claude.last)))
    # both relays are in place (routing hands over after the first upstream bytes)
    await until(lambda: all(IStreamEnd(r, None) is not None for r in proxy.site.active))
    clock = task.Clock()
    stopping = Drain(proxy.site, clock, grace=lambda: 30.0).stopService()
    clock.advance(30)
    await stopping
    chat, messages = await defer.gatherResults(answers)
    error = json.loads(sse_data(chat.body)[-1])["error"]
    assert error["message"].startswith("cliproxy is shutting down")
    last = json.loads(sse_data(messages.body)[-1])
    assert last["type"] == "error" and "shutting down" in last["error"]["message"]
    await until(lambda: oai.last.outcome is not None and claude.last.outcome is not None)


@pytest_twisted.ensureDeferred
async def test_shutdown_after_grace_answers_requests_still_waiting_with_a_json_503(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", "/v1/chat/completions", Reply(hang=True))
    proxy = start_proxy(providers(oai=oai))
    body = {"model": "gpt-fake", "messages": HI}
    answer = defer.ensureDeferred(call(proxy.url, "POST", "/v1/chat/completions", body))
    await until(lambda: oai.requests and len(proxy.site.active) == 1)
    clock = task.Clock()
    stopping = Drain(proxy.site, clock, grace=lambda: 30.0).stopService()
    clock.advance(30)
    await stopping
    a = await answer
    assert (a.status, a.reason) == (503, "Service Unavailable")
    assert a.json()["error"]["message"].startswith("cliproxy is shutting down")


CLIENT_STREAMS = {
    "openai-chat": ("/v1/chat/completions", {"messages": HI, "stream": True}),
    "openai-responses": ("/v1/responses", {"input": "hi", "stream": True}),
    "claude": ("/v1/messages", {"messages": HI, "stream": True, "max_tokens": 9}),
    "gemini": ("/v1beta/models/gpt-fake:streamGenerateContent?alt=sse", {"contents": []}),
}


@pytest.mark.parametrize("client", sorted(CLIENT_STREAMS))
@pytest_twisted.ensureDeferred
async def test_every_client_format_gets_a_terminal_error_after_an_upstream_reset(
    client, start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="a long enough answer to cut"), "gpt-fake")
    junk_and_events = interleave(events, [b"data: \n\n"])
    oai.script("POST", "/v1/chat/completions", Reply(sse=junk_and_events, reset_after=500))
    proxy = start_proxy(providers(oai=oai))
    path, body = CLIENT_STREAMS[client]
    if client != "gemini":
        body = {**body, "model": "gpt-fake"}
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    a = await call(proxy.url, "POST", path, body)
    assert a.status == 200, a.body
    frames = sse_data(a.body)
    assert all(f.strip() for f in frames)  # no empty data frame on any path
    last = json.loads(frames[-1])
    text = json.dumps(last)
    assert "upstream connection lost mid-stream" in text, (client, frames[-2:])
