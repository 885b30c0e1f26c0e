"""Large bodies on Amp's `/api/provider/...` routes are read off the reactor (issue 14, item 7).

The fallback parses the body once on the `LargeBodies` pool, reads the model, sanitises the
thinking blocks and, for a mapping, re-encodes it there; over loopback sockets, another
client's stream keeps flowing meanwhile and the upstream gets the right body.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from cliproxy.amp.fallback import AmpBody, read_amp_body
from cliproxy.routing.offload import LargeBodies
from tests.amp.kit import amp_config, claude_provider, raw_connect
from tests.fakes import FakeAmp, FakeClaude
from tests.security.kit import http_request, port_of
from tests.security.pacer import PingPongClient, paced_site
from tests.serving_kit import CLIENT_KEY
from tests.web.httpwire import parse_answers

MESSAGES = "/api/provider/anthropic/v1/messages"
#: stream rounds that must pass while the large body is read
# on the reactor only the rounds around the window's edges run (3 seen); how many run
# while a worker translates depends on the machine (11 to 47 seen, idle 2 cores): a low bar
ROUNDS = 6
#: rounds that let the large body's first bytes reach cliproxy before its last one is sent
SETTLE = 60


def paced_provider(port: int) -> str:
    return (
        "openai-compatibility:\n  - name: paced\n"
        f"    base-url: http://127.0.0.1:{port}/v1\n"
        "    api-key-entries: [{api-key: sk-paced}]\n"
        "    models: [{name: gpt-paced, alias: gpt-paced}]\n"
    )


def amp_turns(target: int) -> list[dict[str, Any]]:
    """Short alternating turns, about `target` bytes of JSON; every assistant turn replays
    a thinking block without a signature (which the sanitiser drops)."""
    turns: list[dict[str, Any]] = []
    size = 0
    while size < target or turns[-1]["role"] != "user":
        n = len(turns)
        if n % 2 == 0:
            turn: dict[str, Any] = {"role": "user", "content": f"turn {n}: short words"}
        else:
            turn = {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": ""},
                    {"type": "text", "text": f"turn {n}: an answer"},
                ],
            }
        turns.append(turn)
        size += len(json.dumps(turn)) + 2
    return turns


def sanitised(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for turn in turns:
        if isinstance(turn["content"], list):
            kept = [b for b in turn["content"] if b["type"] != "thinking"]
            turn = {**turn, "content": kept}
        out.append(turn)
    return out


def amp_post(body: dict[str, Any]) -> bytes:
    headers = {
        "Authorization": f"Bearer {CLIENT_KEY}",
        "Content-Type": "application/json",
        "anthropic-version": "2023-06-01",
    }
    return http_request("POST", MESSAGES, headers, json.dumps(body).encode())


def chat_post(body: dict[str, Any]) -> bytes:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    return http_request("POST", "/v1/chat/completions", headers, json.dumps(body).encode())


@pytest_twisted.ensureDeferred
async def test_a_stream_keeps_flowing_while_a_large_amp_body_is_read(start_fake, start_proxy):
    """A 2 MiB Claude body for a model only the Amp upstream serves: between the moment its
    last byte is sent and the moment the Amp upstream sees the connection for it, the only
    work is the fallback's parse and sanitising. Done on the reactor, the stream's
    ping-pong could not run a round in that window; on the pool it runs many. The Amp
    upstream gets the body with the unsigned thinking blocks dropped."""
    paced_site_, paced = paced_site("sk-paced")
    paced_port = reactor.listenTCP(0, paced_site_, interface="127.0.0.1")
    amp = start_fake(FakeAmp)
    limits = "limits: {large-body-size: 64KiB}\n"
    proxy = start_proxy(
        amp_config(amp.url, providers=paced_provider(paced_port.getHost().port) + limits)
    )
    proxy.app.router.bodies.startService()
    client = PingPongClient(paced.send)
    try:
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(proxy)), client)
        assert client.transport is not None
        stream = {
            "model": "gpt-paced",
            "stream": True,
            "messages": [{"role": "user", "content": "go"}],
        }
        client.transport.write(chat_post(stream))
        await client.first
        turns = amp_turns(2 * 1024 * 1024)
        body = {"model": "claude-opus-4-7", "max_tokens": 64, "messages": turns}
        raw = amp_post(body)
        large = await raw_connect(port_of(proxy))
        assert large.transport is not None
        large.transport.write(raw[:-1])
        settled = client.events + SETTLE
        await amp.wait_for(lambda: client.events >= settled, timeout=60)
        start = client.events
        client.stop_at = start + ROUNDS  # enough to tell; then leave it the CPU
        large.transport.write(raw[-1:])
        await amp.wait_for(lambda: amp.connections_made > 0, timeout=60)
        upstream = client.events
        await large.closed
        streamed_before = client.events
        paced.finish()
        await client.closed
    finally:
        await proxy.app.router.bodies.stopService()
        await paced_port.stopListening()

    assert upstream - start >= ROUNDS, (start, upstream)
    answers = parse_answers(bytes(large.data))
    assert len(answers) == 1
    assert answers[0].status == 200, answers[0].body[:300]
    assert "hello from fake-amp" in answers[0].body.decode()
    sent = amp.last.json
    assert amp.last.path == MESSAGES and sent["model"] == "claude-opus-4-7"
    assert sent["messages"] == sanitised(turns)
    assert proxy.app.amp.stats.count("AMP_CREDITS", "claude-opus-4-7") == 1
    assert client.events > streamed_before and b"data: [DONE]" in client.data


@pytest_twisted.ensureDeferred
async def test_a_large_mapped_amp_body_reaches_the_local_provider_mapped_and_sanitised(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    mapping = "model-mappings:\n  - {from: amp-big, to: claude-fake}\n"
    limits = "limits: {large-body-size: 64KiB}\n"
    proxy = start_proxy(amp_config("", providers=claude_provider(claude) + limits, extra=mapping))
    proxy.app.router.bodies.startService()
    turns = amp_turns(512 * 1024)
    try:
        client = await raw_connect(port_of(proxy))
        assert client.transport is not None
        client.transport.write(amp_post({"model": "amp-big", "max_tokens": 64, "messages": turns}))
        await client.closed
    finally:
        await proxy.app.router.bodies.stopService()
    answers = parse_answers(bytes(client.data))
    assert len(answers) == 1 and answers[0].status == 200, answers
    answer = answers[0].json()
    assert answer["model"] == "amp-big"  # rewritten back to what Amp asked for
    assert answer["content"][0]["text"] == claude.answer_text()
    sent = claude.last.json
    assert sent["model"] == "claude-fake-1"
    assert sent["messages"] == sanitised(turns)
    assert proxy.app.amp.stats.count("MODEL_MAPPING", "amp-big") == 1


def _gated(gate: threading.Event) -> None:
    gate.wait()


@pytest_twisted.ensureDeferred
async def test_a_large_amp_body_gets_a_503_in_claudes_shape_when_the_pool_is_full(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    limits = "limits: {large-body-size: 64KiB, large-body-threads: 1, large-body-queue: 0}\n"
    proxy = start_proxy(amp_config("", providers=claude_provider(claude) + limits))
    bodies: LargeBodies = proxy.app.router.bodies
    bodies.startService()
    gate = threading.Event()
    held = defer.ensureDeferred(bodies.call(10**9, _gated, gate))  # the one thread is busy
    turns = amp_turns(128 * 1024)
    try:
        client = await raw_connect(port_of(proxy))
        assert client.transport is not None
        client.transport.write(
            amp_post({"model": "claude-fake", "max_tokens": 64, "messages": turns})
        )
        await client.closed
    finally:
        gate.set()
        await held
        await bodies.stopService()
    answers = parse_answers(bytes(client.data))
    assert len(answers) == 1
    answer = answers[0]
    assert answer.status == 503
    assert answer.header("retry-after") == "1", answer.headers
    body = answer.json()
    assert body["type"] == "error" and "large-body-queue" in body["error"]["message"]
    assert claude.requests == []


@pytest.mark.parametrize("padding", [0, 300 * 1024])  # read whole, and in pieces
def test_read_amp_body_parses_once_sanitises_and_refuses_deep_bodies(padding):
    pad = b" " * padding
    deep = b'{"model": "m", "a": ' + b"[" * 2000 + b"]" * 2000 + b"}" + pad
    assert read_amp_body(deep).too_deep
    broken = b'{"model": "m", "messages": [' + pad
    assert read_amp_body(broken) == AmpBody(broken, None)
    turns = amp_turns(256)
    raw = json.dumps({"model": " amp-big ", "messages": turns}).encode() + pad
    got = read_amp_body(raw)
    assert got.requested() == "amp-big" and not got.too_deep
    assert json.loads(got.raw) == {"model": " amp-big ", "messages": sanitised(turns)}
    assert got.body == json.loads(got.raw)
    clean = json.dumps({"model": "m", "messages": sanitised(turns)}).encode() + pad
    assert read_amp_body(clean).raw is clean  # nothing changed: the same bytes
