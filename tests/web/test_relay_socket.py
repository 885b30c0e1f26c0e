"""The relay over real sockets: backpressure from a slow client reaches the upstream, and
graceful shutdown lets a stream in flight finish."""

from __future__ import annotations

import json

import pytest_twisted
import treq
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import Protocol

from cliproxy.service import Drain
from tests.fakes import FakeClaude, FakeOpenAI, Reply, claude_events
from tests.fakes.turn import Turn
from tests.serving_kit import CLIENT_KEY, config_text

EVENT = (
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'
    + b"x" * 900
    + b'"}}]}\n\n'
)


def compat(oai) -> str:
    return config_text(
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {oai.url}/v1\n"
        "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
        "    models: [{name: gpt-fake, alias: gpt-fake}]\n"
    )


class Sink(Protocol):
    def __init__(self):
        self.received = 0
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.received += len(data)

    def connectionLost(self, reason):
        self.done.callback(self.received)


@pytest_twisted.ensureDeferred
async def test_slow_client_pauses_the_upstream_instead_of_buffering(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(compat(oai))
    # 20 MB of stream the client will not read for a while
    oai.script("POST", "/v1/chat/completions", Reply(sse=[], repeat=EVENT, repeat_count=20000))
    body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    resp = await treq.post(
        proxy.url + "/v1/chat/completions",
        json.dumps(body).encode(),
        headers={"authorization": "Bearer " + CLIENT_KEY},
        unbuffered=True,
    )
    assert resp.code == 200
    sink = Sink()
    resp.deliverBody(sink)
    sink.transport.pauseProducing()  # the client stops reading
    await task.deferLater(reactor, 0.5, lambda: None)
    rec = oai.last
    assert rec.pauses > 0  # backpressure reached the upstream socket
    assert rec.bytes_sent < 20000 * len(EVENT) // 2  # most of the stream is still upstream
    buffered = sum(
        len(ch.transport.dataBuffer) + ch.transport._tempDataLen
        for ch in proxy.site.channels
        if hasattr(ch.transport, "dataBuffer")
    )
    assert buffered < 8 * 1024 * 1024
    sink.transport.resumeProducing()
    received = await sink.done
    assert received > 20000 * 900  # everything arrived once the client read again


@pytest_twisted.ensureDeferred
async def test_shutdown_lets_a_stream_in_flight_finish(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(
        config_text(
            "claude-api-key:\n"
            f"  - api-key: sk-ant-A\n    base-url: {claude.url}\n"
            "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
        )
    )
    events = claude_events(Turn(text="slow answer"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events, chunk_delay=0.05))
    body = {
        "model": "claude-fake",
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    d = treq.post(
        proxy.url + "/v1/messages", json.dumps(body).encode(), headers={"x-api-key": CLIENT_KEY}
    )
    await claude.wait_requests(1, timeout=2)
    drain = Drain(proxy.site, reactor, lambda: 5.0)
    drain.startService()
    stopping = defer.ensureDeferred(drain.stopService())
    resp = await d
    text = (await resp.content()).decode()
    assert "message_stop" in text  # finished normally during the drain
    await stopping
    assert not proxy.site.active


@pytest_twisted.ensureDeferred
async def test_shutdown_grace_expiry_closes_what_is_left(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(
        config_text(
            "claude-api-key:\n"
            f"  - api-key: sk-ant-A\n    base-url: {claude.url}\n"
            "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
        )
    )
    events = claude_events(Turn(text="never ends"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events[:1], hang=True))
    body = {
        "model": "claude-fake",
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    resp = await treq.post(
        proxy.url + "/v1/messages",
        json.dumps(body).encode(),
        headers={"x-api-key": CLIENT_KEY},
        unbuffered=True,
    )
    sink = Sink()
    resp.deliverBody(sink)
    drain = Drain(proxy.site, reactor, lambda: 0.2)
    drain.startService()
    await defer.ensureDeferred(drain.stopService())
    await sink.done  # the client's connection was closed at the end of the grace period
    assert not proxy.site.channels or all(
        ch.transport is None or ch.transport.disconnecting for ch in proxy.site.channels
    )
    await claude.last.when_done(timeout=1.0)


@pytest_twisted.ensureDeferred
async def test_config_reload_does_not_drop_an_open_stream(start_fake, start_proxy, tmp_path):
    from cliproxy.config.watcher import ConfigWatcher

    claude = start_fake(FakeClaude)
    text = config_text(
        "claude-api-key:\n"
        f"  - api-key: sk-ant-A\n    base-url: {claude.url}\n"
        "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    proxy = start_proxy(text)
    watcher = ConfigWatcher(proxy.store, str(path), reactor)
    events = claude_events(Turn(text="through a reload"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events, chunk_delay=0.05))
    body = {
        "model": "claude-fake",
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    d = treq.post(
        proxy.url + "/v1/messages", json.dumps(body).encode(), headers={"x-api-key": CLIENT_KEY}
    )
    await claude.wait_requests(1, timeout=2)
    path.write_text(text.replace(CLIENT_KEY, CLIENT_KEY + ", sk-added-key-7777"))
    assert watcher.reload() is True  # what SIGHUP does
    assert "sk-added-key-7777" in proxy.store.current.api_keys
    resp = await d
    out = (await resp.content()).decode()
    assert resp.code == 200
    assert "message_stop" in out and "event: error" not in out
