"""The graceful drain and the Responses WebSocket: sessions go away with 1001.

A real autobahn client over loopback, cliproxy's drain service run as on SIGTERM, a fake
Codex upstream. A session between turns is closed at once; one in a turn finishes the turn
first; what is still open when the grace period ends is closed and its upstream cancelled.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from cliproxy.service import Drain
from tests.fakes import FakeCodex
from tests.fakes.openai import response_events
from tests.fakes.reply import Reply
from tests.fakes.turn import Turn
from tests.serving_kit import providers
from tests.websocket.test_socket import MODEL, create, open_session


def drain(proxy, grace: float) -> defer.Deferred:
    service = Drain(proxy.site, reactor, lambda: grace)
    service.startService()
    return defer.ensureDeferred(service.stopService())


@pytest_twisted.ensureDeferred
async def test_a_session_between_turns_closes_with_1001(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    events = await ws.turn(create("hello"))
    assert events[-1]["type"] == "response.completed"
    assert len(proxy.site.upgraded) == 1

    stopping = drain(proxy, 5.0)
    code, reason = await ws.closed
    assert code == 1001
    assert "shutting down" in (reason or "")
    await stopping
    assert len(proxy.site.upgraded) == 0


@pytest_twisted.ensureDeferred
async def test_a_turn_in_progress_finishes_before_the_1001(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="an answer in many parts"), MODEL, "resp_d", True)
    codex.script("POST", codex.generation_path, Reply(sse=events, chunk_delay=0.05))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.send_json(create("hello"))
    first = await ws.next()
    assert first["type"] == "response.created"

    stopping = drain(proxy, 10.0)
    ws.send_json(create("a second turn, sent during the drain"))  # not served
    rest = await ws.until("response.completed", "response.failed", "error")
    assert rest[-1]["type"] == "response.completed"
    code, _ = await ws.closed
    assert code == 1001
    await stopping
    assert codex.last.outcome != "client-gone"
    assert len(codex.received("POST")) == 1  # the frame sent during the drain was not served


@pytest_twisted.ensureDeferred
async def test_grace_expiry_closes_the_session_and_cancels_its_upstream(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="never ends"), MODEL, "resp_h", True)
    codex.script("POST", codex.generation_path, Reply(sse=events[:3], hang=True))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.send_json(create("hello"))
    assert (await ws.next())["type"] == "response.created"
    rec = codex.last

    await drain(proxy, 0.2)
    code, _ = await ws.closed
    assert code == 1001
    await codex.wait_for(lambda: rec.outcome is not None)
    assert rec.outcome == "client-gone"
    assert len(proxy.site.upgraded) == 0


@pytest_twisted.ensureDeferred
async def test_a_session_opened_during_the_drain_goes_away_too(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="a long answer in many parts"), MODEL, "resp_l", True)
    codex.script("POST", codex.generation_path, Reply(sse=events, chunk_delay=0.1))
    proxy = start_proxy(providers(codex=codex))
    busy = await open_session(proxy)
    busy.send_json(create("hello"))
    assert (await busy.next())["type"] == "response.created"

    stopping = drain(proxy, 10.0)  # waits for the busy session's turn
    late = await open_session(proxy)
    code, _ = await late.closed
    assert code == 1001
    assert not stopping.called  # the busy session's turn is still running
    code, _ = await busy.closed
    assert code == 1001
    await stopping
