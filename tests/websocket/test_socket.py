"""The Responses WebSocket mode end to end: a real WebSocket client, cliproxy, fake upstreams.

Every test talks over loopback sockets: autobahn's client protocol to cliproxy's
`GET /v1/responses` upgrade, cliproxy over HTTP SSE to a fake provider.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.fakes import FakeClaude, FakeCodex, FakeGemini
from tests.fakes.openai import response_events
from tests.fakes.reply import Reply
from tests.fakes.turn import Turn
from tests.serving_kit import CLIENT_KEY, config_text, providers
from tests.websocket.client import connect

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
MODEL = "gpt-codex-fake"


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def create(text: str, model: str = MODEL, **fields) -> dict:
    body = {"type": "response.create", "model": model, "input": [user(text)]}
    body.setdefault("instructions", "be brief")
    return {**body, **fields}


def texts(items: list) -> list[str]:
    """The texts of a Responses input, in order, whatever the role."""
    out = []
    for item in items:
        for part in item.get("content") or []:
            if isinstance(part, dict) and "text" in part:
                out.append(part["text"])
    return out


def two_codex_keys(fake) -> str:
    entries = "".join(
        f"  - api-key: sk-codex-test-{n}\n    base-url: {fake.url}/backend-api/codex\n"
        f"    models: [{{name: {MODEL}, alias: {MODEL}}}]\n"
        for n in (1, 2)
    )
    return config_text("codex-api-key:\n" + entries)


async def open_session(proxy, path: str = "/v1/responses", headers=None):
    return await connect(proxy.url + path, headers if headers is not None else AUTH)


# -- turns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, model, path",
    [
        ("codex", MODEL, "/backend-api/codex/responses"),
        ("claude", "claude-fake", "/v1/messages"),
        ("gemini", "gemini-fake", "/v1beta/models/gemini-fake:streamGenerateContent"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_any_account_serves_a_turn_one_event_per_frame(
    start_fake, start_proxy, kind, model, path
):
    fake = start_fake({"codex": FakeCodex, "claude": FakeClaude, "gemini": FakeGemini}[kind])
    fake.text = "hi over the socket"
    proxy = start_proxy(providers(**{kind: fake}))
    ws = await open_session(proxy)
    events = await ws.turn(create("hello", model=model))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "hi over the socket"
    assert fake.last.path == path
    assert "type" not in fake.last.json and "generate" not in fake.last.json
    ws.sendClose(1000)
    code, _ = await ws.closed
    assert code == 1000


@pytest_twisted.ensureDeferred
async def test_a_continuation_sends_the_whole_transcript_upstream(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    codex.script_turn(Turn(text="first answer", id="resp_one"), Turn(text="second answer"))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    first = await ws.turn(create("first question"))
    rid = first[-1]["response"]["id"]
    assert rid == "resp_one"
    follow = {
        "type": "response.create",
        "model": MODEL,
        "previous_response_id": rid,
        "input": [user("second question")],
    }
    second = await ws.turn(follow)
    assert second[-1]["type"] == "response.completed"
    sent = codex.last.json
    assert texts(sent["input"]) == ["first question", "first answer", "second question"]
    assert "previous_response_id" not in sent
    assert sent["instructions"] == "be brief"  # carried on from the first request
    # response.append adds input to the last response in the same way
    third = await ws.turn({"type": "response.append", "input": [user("third")]})
    assert third[-1]["type"] == "response.completed"
    assert texts(codex.last.json["input"])[-2:] == ["second answer", "third"]


@pytest_twisted.ensureDeferred
async def test_a_warmup_is_answered_without_an_upstream_call(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    events = await ws.turn(create("set up", generate=False))
    assert [e["type"] for e in events] == ["response.created", "response.completed"]
    assert codex.received() == []
    rid = events[-1]["response"]["id"]
    follow = create("now answer", previous_response_id=rid)
    done = await ws.turn(follow)
    assert done[-1]["type"] == "response.completed"
    assert texts(codex.last.json["input"]) == ["set up", "now answer"]


@pytest_twisted.ensureDeferred
async def test_the_credential_is_pinned_for_the_session(start_fake, start_proxy):
    import treq

    codex = start_fake(FakeCodex)
    proxy = start_proxy(two_codex_keys(codex))
    body = {"model": MODEL, "input": "hi", "instructions": "x"}
    for _ in range(2):  # plain HTTP requests go round-robin over both keys
        resp = await treq.post(proxy.url + "/v1/responses", json=body, headers=AUTH)
        assert resp.code == 200
        await resp.content()
    assert {rec.key for rec in codex.received()} == {"sk-codex-test-1", "sk-codex-test-2"}
    codex.reset()
    ws = await open_session(proxy)
    for n in range(4):
        events = await ws.turn(create(f"turn {n}"))
        assert events[-1]["type"] == "response.completed"
    assert len(codex.received()) == 4
    assert len({rec.key for rec in codex.received()}) == 1


@pytest_twisted.ensureDeferred
async def test_the_turn_state_header_is_echoed_and_the_codex_path_works(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    headers = {**AUTH, "x-codex-turn-state": "ts-123"}
    ws = await open_session(proxy, "/backend-api/codex/responses", headers)
    assert ws.response_headers.get("x-codex-turn-state") == "ts-123"
    events = await ws.turn(create("hello"))
    assert events[-1]["type"] == "response.completed"


# -- errors that keep the session -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_provider_400_is_an_error_event_and_the_session_goes_on(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    codex.script("POST", codex.generation_path, Reply(400, json={"detail": "Bad input items"}))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    events = await ws.turn(create("hello"))
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "error" and error["status"] == 400
    assert "Bad input items" in error["error"]["message"]
    assert (await ws.turn(create("again")))[-1]["type"] == "response.completed"


@pytest.mark.parametrize(
    "frame, words",
    [
        ({"type": "response.cancel"}, "unsupported websocket request type"),
        ({"type": "response.append", "input": []}, "before any response.create"),
        ({"type": "response.create", "input": []}, "'model' is required"),
        ([1, 2], "must be a JSON object"),
        (create("x", previous_response_id="resp_nope"), "unknown to this WebSocket session"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_frame_it_cannot_serve_gets_a_400_event(start_fake, start_proxy, frame, words):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.send_json(frame)
    error = await ws.next()
    assert error["type"] == "error" and error["status"] == 400
    assert words in error["error"]["message"]
    assert error["error"]["type"] == "invalid_request_error"
    assert codex.received() == []
    assert (await ws.turn(create("fine")))[-1]["type"] == "response.completed"


# -- frames that close the session ------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, binary, code, words",
    [
        (b'{"type":"response.create"}', True, 1003, "binary"),
        (b'{"type": "response.create", ', False, 1007, "JSON"),
        (b"\xff\xfe not utf-8", False, 1007, ""),
        (b"x" * (20 * 1024 * 1024), False, 1009, ""),
    ],
    ids=["binary", "not-json", "not-utf8", "20MiB"],
)
@pytest_twisted.ensureDeferred
async def test_a_frame_it_cannot_take_closes_with_its_code(
    start_fake, start_proxy, payload, binary, code, words
):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.sendMessage(payload, isBinary=binary)
    got, reason = await ws.closed
    assert got == code
    assert words in (reason or "")
    assert codex.received() == []


async def mid_answer(start_fake, start_proxy):
    """A session whose turn is streaming: the first event is in, the upstream hangs."""
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="a long answer"), MODEL, "resp_x", True)
    codex.script("POST", codex.generation_path, Reply(sse=events[:3], hang=True))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.send_json(create("hello"))
    first = await ws.next()
    assert first["type"] == "response.created"
    rec = codex.last
    assert rec.outcome is None  # still streaming
    return ws, codex, rec


@pytest_twisted.ensureDeferred
async def test_leaving_mid_answer_closes_the_upstream_request(start_fake, start_proxy):
    ws, codex, rec = await mid_answer(start_fake, start_proxy)
    ws.transport.abortConnection()
    await codex.wait_for(lambda: rec.outcome is not None)
    assert rec.outcome == "client-gone"


@pytest_twisted.ensureDeferred
async def test_a_bad_frame_mid_answer_closes_and_cancels_the_upstream(start_fake, start_proxy):
    ws, codex, rec = await mid_answer(start_fake, start_proxy)
    ws.sendMessage(b"\x00\x01", isBinary=True)
    code, _ = await ws.closed
    assert code == 1003
    await codex.wait_for(lambda: rec.outcome is not None)
    assert rec.outcome == "client-gone"


@pytest_twisted.ensureDeferred
async def test_a_close_mid_answer_cancels_the_upstream(start_fake, start_proxy):
    ws, codex, rec = await mid_answer(start_fake, start_proxy)
    ws.sendClose(1000)
    code, _ = await ws.closed
    assert code == 1000
    await codex.wait_for(lambda: rec.outcome is not None)
    assert rec.outcome == "client-gone"


# -- the upgrade itself -----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}])
@pytest_twisted.ensureDeferred
async def test_the_upgrade_needs_a_client_key(start_fake, start_proxy, headers):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    with pytest.raises(ConnectionRefusedError) as refused:
        await open_session(proxy, headers=headers)
    assert "401" in str(refused.value)


@pytest_twisted.ensureDeferred
async def test_a_foreign_origin_is_refused_as_for_http(start_fake, start_proxy):
    proxy = start_proxy(providers(codex=start_fake(FakeCodex)))
    headers = {**AUTH, "Origin": "https://evil.example"}
    with pytest.raises(ConnectionRefusedError) as refused:
        await open_session(proxy, headers=headers)
    assert "403" in str(refused.value)


@pytest_twisted.ensureDeferred
async def test_posts_still_reach_the_http_endpoint(start_fake, start_proxy):
    import treq

    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    body = {"model": MODEL, "input": "hi", "instructions": "x"}
    resp = await treq.post(proxy.url + "/v1/responses", json=body, headers=AUTH)
    assert resp.code == 200
    assert (await resp.json())["status"] == "completed"
    plain = await treq.get(proxy.url + "/v1/responses", headers=AUTH)
    assert plain.code == 405
    await plain.content()
    await defer.succeed(None)


# -- failures and flow control ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_pin_moves_when_its_credential_is_rate_limited(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(two_codex_keys(codex))
    ws = await open_session(proxy)
    await ws.turn(create("one"))
    pinned = codex.last.key
    other = ({"sk-codex-test-1", "sk-codex-test-2"} - {pinned}).pop()
    codex.script_error(429, "slow down", retry_after=600, key=pinned)
    second = await ws.turn(create("two"))
    assert second[-1]["type"] == "response.completed"  # failed over within the turn
    assert codex.last.key == other
    await ws.turn(create("three"))
    assert codex.last.key == other  # the session now stays on the other credential


@pytest_twisted.ensureDeferred
async def test_an_upstream_reset_mid_answer_is_an_error_frame_and_the_session_goes_on(
    start_fake, start_proxy
):
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="a long answer"), MODEL, "resp_x", True)
    codex.script("POST", codex.generation_path, Reply(sse=events[:4], reset_after=1))
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.send_json(create("hello"))
    frames = await ws.until("error", "response.failed", "response.completed")
    assert frames[-1]["type"] in ("error", "response.failed")
    assert "mid-stream" in json.dumps(frames[-1])
    done = await ws.turn(create("again"))
    assert done[-1]["type"] == "response.completed"
    # the failed turn is not part of the transcript: the retry starts from the first request
    assert texts(codex.last.json["input"]) == ["again"]


#: one Responses text delta of about 1 KB, as an upstream SSE event
DELTA = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"item_id":"msg_1","output_index":0,"content_index":0,"delta":"' + b"x" * 900 + b'"}\n\n'
)


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_pauses_the_upstream(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    events = response_events(Turn(text="x"), MODEL, "resp_x", True)
    codex.script(
        "POST", codex.generation_path, Reply(sse=events[:2], repeat=DELTA, repeat_count=20000)
    )
    proxy = start_proxy(providers(codex=codex))
    ws = await open_session(proxy)
    ws.transport.pauseProducing()  # the client stops reading its socket
    ws.send_json(create("hello"))
    await codex.wait_requests(1)
    rec = codex.last
    await codex.wait_for(lambda: rec.pauses > 0, timeout=10)
    assert rec.bytes_sent < 20000 * len(DELTA) // 2  # most of it is still upstream
    ws.transport.resumeProducing()
    ws.transport.abortConnection()
    await codex.wait_for(lambda: rec.outcome is not None)
    assert rec.outcome == "client-gone"
