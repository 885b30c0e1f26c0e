"""Serving from API-key providers end to end: real client SDKs -> cliproxy -> fake upstreams.

The SDKs are synchronous, so each call runs in a thread while the reactor serves both
cliproxy and the fakes on loopback.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread

from tests.fakes import FakeClaude, FakeCodex, FakeGemini, FakeOpenAI, Pause, Reply
from tests.serving_kit import CLIENT_KEY, config_text, providers

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")


def in_thread(fn):
    return deferToThread(fn)


# -- each SDK against a provider of its own format ----------------------------------------


@pytest_twisted.ensureDeferred
async def test_openai_sdk_chat_plain_and_streamed(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)

    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert reply.choices[0].message.content == "hello from fake-openai"
    assert oai.last.header("authorization") == "Bearer sk-oai-test-1"
    assert CLIENT_KEY not in json.dumps(oai.last.headers)

    def stream():
        chunks = client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert await in_thread(stream) == "hello from fake-openai"
    assert oai.last.json["stream"] is True
    book = proxy.app.usage
    assert book.by_model["gpt-fake"].requests == 2
    assert book.by_model["gpt-fake"].input_tokens == 20


@pytest_twisted.ensureDeferred
async def test_anthropic_sdk_plain_and_streamed(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(claude=claude))
    client = anthropic.Anthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    msg = await in_thread(
        lambda: client.messages.create(
            model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert msg.content[0].text == "hello from fake-claude"
    assert claude.last.key == "sk-ant-test-1"  # Bearer: base-url is not api.anthropic.com
    assert claude.last.json["model"] == "claude-fake-1"  # alias resolved upstream

    def stream():
        with client.messages.stream(
            model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        return text, final.usage.output_tokens

    text, out_tokens = await in_thread(stream)
    assert text == "hello from fake-claude"
    assert out_tokens == 5


@pytest_twisted.ensureDeferred
async def test_genai_sdk_plain_and_streamed(start_fake, start_proxy):
    from google.genai import types

    gemini = start_fake(FakeGemini)
    proxy = start_proxy(providers(gemini=gemini))
    client = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url))
    resp = await in_thread(
        lambda: client.models.generate_content(model="gemini-fake", contents="hi")
    )
    assert resp.text == "hello from fake-gemini"
    assert gemini.last.header("x-goog-api-key") == "g-test-1"

    def stream():
        return "".join(
            c.text or ""
            for c in client.models.generate_content_stream(model="gemini-fake", contents="hi")
        )

    assert await in_thread(stream) == "hello from fake-gemini"
    assert gemini.last.arg("alt") == "sse"


@pytest_twisted.ensureDeferred
async def test_openai_sdk_responses_on_codex_key_plain_and_streamed(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    resp = await in_thread(lambda: client.responses.create(model="gpt-codex-fake", input="hi"))
    assert resp.output_text == "hello from fake-codex"
    assert codex.last.json["stream"] is True  # Codex is always streamed upstream

    def stream():
        out = []
        for ev in client.responses.create(model="gpt-codex-fake", input="hi", stream=True):
            if ev.type == "response.output_text.delta":
                out.append(ev.delta)
        return "".join(out)

    assert await in_thread(stream) == "hello from fake-codex"


# -- the credential pool over real sockets ------------------------------------------------


def two_keys(claude, strategy="round-robin") -> str:
    return config_text(
        f"routing:\n  strategy: {strategy}\n"
        "claude-api-key:\n"
        f"  - api-key: sk-ant-A\n    base-url: {claude.url}\n"
        "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
        f"  - api-key: sk-ant-B\n    base-url: {claude.url}\n"
        "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
    )


async def post_messages(proxy, stream=False):
    body = {
        "model": "claude-fake",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
    }
    if stream:
        body["stream"] = True
    resp = await treq.post(
        proxy.url + "/v1/messages",
        json.dumps(body).encode(),
        headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
        unbuffered=True,
    )
    return resp, await resp.content()


@pytest_twisted.ensureDeferred
async def test_round_robin_alternates_keys(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(two_keys(claude))
    used = []
    for _ in range(4):
        resp, _ = await post_messages(proxy)
        assert resp.code == 200
        used.append(claude.last.key)
    assert used in (["sk-ant-A", "sk-ant-B"] * 2, ["sk-ant-B", "sk-ant-A"] * 2)


@pytest_twisted.ensureDeferred
async def test_fill_first_sticks_to_one_key(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(two_keys(claude, "fill-first"))
    used = set()
    for _ in range(3):
        resp, _ = await post_messages(proxy)
        assert resp.code == 200
        used.add(claude.last.key)
    assert used == {"sk-ant-A"}


@pytest_twisted.ensureDeferred
async def test_429_key_is_skipped_until_retry_after_passes(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    clock = task.Clock()
    proxy = start_proxy(two_keys(claude, "fill-first"), clock)
    claude.script_error(429, "slow down", retry_after=30, key="sk-ant-A")
    resp, body = await post_messages(proxy)
    assert resp.code == 200  # the client never sees A's 429 while B works
    assert [r.key for r in claude.requests] == ["sk-ant-A", "sk-ant-B"]
    resp, _ = await post_messages(proxy)
    assert claude.last.key == "sk-ant-B"  # A rests
    clock.advance(31)
    resp, _ = await post_messages(proxy)
    assert claude.last.key == "sk-ant-A"  # A is back after Retry-After


@pytest_twisted.ensureDeferred
async def test_every_key_cooling_gives_429_with_retry_after(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(two_keys(claude), task.Clock())
    claude.script_error(429, "slow down", retry_after=60, times=2)
    resp, body = await post_messages(proxy)
    assert resp.code == 429
    resp, body = await post_messages(proxy)
    assert resp.code == 429
    err = json.loads(body)
    assert err["type"] == "error" and err["error"]["type"] == "rate_limit_error"
    assert "cooling" in err["error"]["message"]
    assert int(resp.headers.getRawHeaders("retry-after")[0]) >= 50
    assert len(claude.requests) == 2  # the second call touched no upstream


@pytest_twisted.ensureDeferred
async def test_request_invalid_error_is_not_retried_on_other_keys(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(two_keys(claude))
    claude.script(
        "POST",
        "/v1/messages",
        Reply(
            status=400,
            json={"type": "error", "error": {"type": "invalid_request_error", "message": "bad x"}},
        ),
    )
    resp, body = await post_messages(proxy)
    assert resp.code == 400
    assert json.loads(body)["error"]["message"] == "bad x"
    assert len(claude.requests) == 1


# -- streaming relay ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_dropping_a_long_stream_closes_the_upstream_within_a_second(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(claude=claude))
    from tests.fakes import claude_events
    from tests.fakes.turn import Turn

    events = claude_events(Turn(text="first"), "claude-fake-1")
    # one event, then ten minutes of silence before the rest
    claude.script("POST", "/v1/messages", Reply(sse=[events[0], Pause(600), *events[1:]]))
    resp, _ = None, None
    got_first = defer.Deferred()
    from twisted.internet.protocol import Protocol

    class FirstChunk(Protocol):
        def dataReceived(self, data):
            if not got_first.called:
                got_first.callback(data)

    body = {
        "model": "claude-fake",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    resp = await treq.post(
        proxy.url + "/v1/messages",
        json.dumps(body).encode(),
        headers={"x-api-key": CLIENT_KEY},
        unbuffered=True,
    )
    assert resp.code == 200
    proto = FirstChunk()
    resp.deliverBody(proto)
    first = await got_first
    assert b"message_start" in first
    rec = claude.last
    assert rec.outcome is None  # the upstream stream is open
    proto.transport.stopProducing()  # the client hangs up
    await rec.when_done(timeout=1.0)
    assert rec.outcome == "client-gone"
    await task.deferLater(reactor, 0.05, lambda: None)
    assert claude.open_connections == 0


@pytest_twisted.ensureDeferred
async def test_upstream_reset_mid_stream_ends_with_a_claude_error_event(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(claude=claude))
    claude.default("POST", claude.generation_path, claude.default_answer(reset_after=200))
    resp, body = await post_messages_model(proxy, "claude-fake")
    assert resp.code == 200
    text = body.decode()
    assert text.rstrip().endswith("}")
    assert "event: error" in text
    assert '"type":"error"' in text.replace(" ", "")
    assert "message_stop" not in text


async def post_messages_model(proxy, model):
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    resp = await treq.post(
        proxy.url + "/v1/messages",
        json.dumps(body).encode(),
        headers={"x-api-key": CLIENT_KEY},
        unbuffered=True,
    )
    return resp, await resp.content()


@pytest_twisted.ensureDeferred
async def test_openai_stream_reset_gives_error_chunk_without_done(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    oai.default("POST", oai.generation_path, oai.default_answer(reset_after=120))
    body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    resp = await treq.post(
        proxy.url + "/v1/chat/completions",
        json.dumps(body).encode(),
        headers={"authorization": "Bearer " + CLIENT_KEY},
    )
    text = (await resp.content()).decode()
    assert resp.code == 200
    assert '"error"' in text
    assert "[DONE]" not in text


@pytest_twisted.ensureDeferred
async def test_stream_split_at_every_byte_arrives_whole(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(providers(gemini=gemini))
    gemini.default("POST", gemini.generation_path, gemini.default_answer(split_every=1))
    resp = await treq.post(
        proxy.url + "/v1beta/models/gemini-fake:streamGenerateContent?alt=sse",
        json.dumps({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}).encode(),
        headers={"x-goog-api-key": CLIENT_KEY},
    )
    text = (await resp.content()).decode()
    datas = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    joined = "".join(
        p.get("text", "")
        for d in datas
        for c in d.get("candidates", [])
        for p in c["content"]["parts"]
    )
    assert joined == "hello from fake-gemini"


@pytest_twisted.ensureDeferred
async def test_gzip_stream_without_content_encoding_is_decoded(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    oai.default("POST", oai.generation_path, oai.default_answer(gzip=True, content_encoding=False))
    body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    resp = await treq.post(
        proxy.url + "/v1/chat/completions",
        json.dumps(body).encode(),
        headers={"authorization": "Bearer " + CLIENT_KEY},
    )
    text = (await resp.content()).decode()
    assert "hello from fake-openai" in text.replace('","', "").replace('"content":"', "") or (
        "hello" in text
    )
    assert text.rstrip().endswith("data: [DONE]")
    assert oai.last.header("accept-encoding") == "identity"


@pytest_twisted.ensureDeferred
async def test_stalled_upstream_ends_stream_after_idle_timeout(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    text = providers(claude=claude) + "streaming:\n  idle-timeout-seconds: 0.3\n"
    proxy = start_proxy(text)
    from tests.fakes import claude_events
    from tests.fakes.turn import Turn

    events = claude_events(Turn(text="first"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=[events[0]], hang=True))
    resp, body = await post_messages_model(proxy, "claude-fake")
    out = body.decode()
    assert "message_start" in out
    assert "event: error" in out
    assert "sent nothing" in out
    await claude.last.when_done(timeout=1.0)


# -- bad input never reaches an upstream -------------------------------------------------------


@pytest.mark.parametrize(
    "path,body,status,needle",
    [
        ("/v1/chat/completions", {"messages": []}, 400, "'model' is required"),
        ("/v1/chat/completions", {"model": 5, "messages": []}, 400, "non-empty string"),
        ("/v1/chat/completions", {"model": "gpt-fake", "messages": "hi"}, 400, "'messages'"),
        ("/v1/messages", {"model": "claude-fake", "messages": {"a": 1}}, 400, "'messages'"),
        ("/v1/chat/completions", {"model": "nope-model", "messages": []}, 404, "/v1/models"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_bodies_get_client_shaped_errors_and_no_upstream_call(
    start_fake, start_proxy, path, body, status, needle
):
    oai = start_fake(FakeOpenAI)
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(oai=oai, claude=claude))
    resp = await treq.post(
        proxy.url + path, json.dumps(body).encode(), headers={"x-api-key": CLIENT_KEY}
    )
    err = json.loads(await resp.content())
    assert resp.code == status
    assert needle in err["error"]["message"]
    assert oai.requests == [] and claude.requests == []


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400_in_claude_shape(start_proxy):
    proxy = start_proxy(config_text())
    resp = await treq.post(
        proxy.url + "/v1/messages", b"{not json", headers={"x-api-key": CLIENT_KEY}
    )
    err = json.loads(await resp.content())
    assert resp.code == 400
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"


@pytest_twisted.ensureDeferred
async def test_excluded_model_is_not_served(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    text = config_text(
        "claude-api-key:\n"
        f"  - api-key: sk-ant-A\n    base-url: {claude.url}\n"
        "    excluded-models: ['*haiku*']\n"
    )
    proxy = start_proxy(text)
    resp, body = await post_messages_model(proxy, "claude-haiku-4-5-20251001")
    assert resp.code in (404, 503)
    assert claude.requests == []


@pytest_twisted.ensureDeferred
async def test_models_list_shows_configured_models(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(claude=claude, oai=oai))
    resp = await treq.get(proxy.url + "/v1/models", headers={"x-api-key": CLIENT_KEY})
    ids = {m["id"] for m in json.loads(await resp.content())["data"]}
    assert {"claude-fake", "gpt-fake"} <= ids
    resp = await treq.get(proxy.url + "/v1beta/models", headers={"x-api-key": CLIENT_KEY})
    names = {m["name"] for m in json.loads(await resp.content())["models"]}
    assert "models/claude-fake" in names


@pytest_twisted.ensureDeferred
async def test_stream_that_dies_before_its_first_byte_fails_over(start_fake, start_proxy):
    from tests.fakes import claude_events
    from tests.fakes.turn import Turn

    claude = start_fake(FakeClaude)
    proxy = start_proxy(two_keys(claude, "fill-first"))
    events = claude_events(Turn(text="hi"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events, reset_after=0), key="sk-ant-A")
    resp, body = await post_messages(proxy, stream=True)
    assert resp.code == 200
    text = body.decode()
    assert "message_stop" in text and "event: error" not in text
    assert [r.key for r in claude.requests] == ["sk-ant-A", "sk-ant-B"]
