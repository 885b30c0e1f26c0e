"""The model-API fakes answer like the real services over loopback sockets."""

import json

import pytest_twisted
import treq

from cliproxy.formats.sse import SSEDecoder
from tests.fakes import FakeClaude, FakeGemini, FakeOpenAI, Turn


async def call(method, url, pool, **kwargs):
    response = await treq.request(method, url, pool=pool, unbuffered=True, **kwargs)
    reads = []
    await treq.collect(response, reads.append)
    return response, b"".join(reads)


def events_of(body):
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


CLAUDE_HEADERS = {"x-api-key": "sk-a", "anthropic-version": "2023-06-01"}
MSG = {"role": "user", "content": "hello"}


@pytest_twisted.ensureDeferred
async def test_claude_answers_json_and_stream_echoing_the_model(fake_claude, http_pool):
    body = {"model": "claude-x", "max_tokens": 64, "messages": [MSG]}
    response, raw = await call(
        "POST", fake_claude.url + "/v1/messages", http_pool, headers=CLAUDE_HEADERS, json=body
    )
    msg = json.loads(raw)
    assert response.code == 200
    assert msg["model"] == "claude-x"
    assert msg["content"] == [{"type": "text", "text": "hello from fake-claude"}]
    assert msg["usage"]["input_tokens"] == 10

    _, raw = await call(
        "POST",
        fake_claude.url + "/v1/messages?beta=true",
        http_pool,
        headers=CLAUDE_HEADERS,
        json={**body, "stream": True},
    )
    events = events_of(raw)
    assert events[0].event == "message_start" and events[-1].event == "message_stop"
    text = "".join(
        json.loads(e.data)["delta"].get("text", "")
        for e in events
        if e.event == "content_block_delta"
    )
    assert text == "hello from fake-claude"
    assert fake_claude.last.arg("beta") == "true"


@pytest_twisted.ensureDeferred
async def test_claude_calls_a_tool_when_asked_and_thinks_when_enabled(fake_claude, http_pool):
    body = {
        "model": "claude-x",
        "max_tokens": 64,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [
            {
                "name": "get_weather",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ],
        "messages": [{"role": "user", "content": "use get_weather please"}],
    }
    _, raw = await call("POST", fake_claude.url + "/v1/messages", http_pool, json=body)
    content = json.loads(raw)["content"]
    assert [b["type"] for b in content] == ["thinking", "tool_use"]
    assert content[1]["input"] == {"city": "test"}


@pytest_twisted.ensureDeferred
async def test_claude_rejects_like_the_real_api(start_fake, http_pool):
    fake = start_fake(FakeClaude, keys={"sk-good"})
    bad, raw = await call(
        "POST", fake.url + "/v1/messages", http_pool, headers={"x-api-key": "sk-bad"}, json={}
    )
    assert bad.code == 401
    assert json.loads(raw)["error"]["type"] == "authentication_error"
    missing, raw = await call(
        "POST",
        fake.url + "/v1/messages",
        http_pool,
        headers={"Authorization": "Bearer sk-good"},
        json={"model": "m", "messages": [MSG]},
    )
    assert missing.code == 400 and "max_tokens" in json.loads(raw)["error"]["message"]
    count, raw = await call(
        "POST",
        fake.url + "/v1/messages/count_tokens",
        http_pool,
        headers={"x-api-key": "sk-good"},
        json={"model": "m", "messages": [MSG]},
    )
    assert count.code == 200 and json.loads(raw)["input_tokens"] > 0


@pytest_twisted.ensureDeferred
async def test_scripted_turns_and_errors_per_key(start_fake, http_pool):
    fake = start_fake(FakeClaude, keys={"A", "B"})
    fake.script_error(429, "slow down", retry_after=3, key="A")
    fake.script_turn(Turn(text="scripted"))
    body = {"model": "m", "max_tokens": 8, "messages": [MSG]}
    url = fake.url + "/v1/messages"
    a, raw_a = await call("POST", url, http_pool, headers={"x-api-key": "A"}, json=body)
    b, raw_b = await call("POST", url, http_pool, headers={"x-api-key": "B"}, json=body)
    assert a.code == 429 and a.headers.getRawHeaders("retry-after") == ["3"]
    assert json.loads(raw_a)["error"]["type"] == "rate_limit_error"
    assert json.loads(raw_b)["content"][0]["text"] == "scripted"


@pytest_twisted.ensureDeferred
async def test_openai_chat_json_stream_and_models(fake_openai, http_pool):
    auth = {"Authorization": "Bearer sk-o"}
    body = {"model": "gpt-x", "messages": [MSG]}
    _, raw = await call(
        "POST", fake_openai.url + "/v1/chat/completions", http_pool, headers=auth, json=body
    )
    done = json.loads(raw)
    assert done["object"] == "chat.completion"
    assert done["choices"][0]["message"]["content"] == "hello from fake-openai"

    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    _, raw = await call(
        "POST", fake_openai.url + "/chat/completions", http_pool, headers=auth, json=stream
    )
    events = events_of(raw)
    assert events[-1].data == b"[DONE]"
    assert json.loads(events[-2].data)["usage"]["prompt_tokens"] == 10
    assert fake_openai.last.key == "sk-o"

    _, raw = await call("GET", fake_openai.url + "/v1/models", http_pool, headers=auth)
    assert [m["id"] for m in json.loads(raw)["data"]] == fake_openai.models


@pytest_twisted.ensureDeferred
async def test_openai_responses_json_and_stream(fake_openai, http_pool):
    body = {"model": "gpt-x", "input": "hi", "reasoning": {"effort": "high"}}
    _, raw = await call("POST", fake_openai.url + "/v1/responses", http_pool, json=body)
    resp = json.loads(raw)
    assert [i["type"] for i in resp["output"]] == ["reasoning", "message"]
    _, raw = await call(
        "POST", fake_openai.url + "/v1/responses", http_pool, json={**body, "stream": True}
    )
    names = [e.event for e in events_of(raw)]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in names


@pytest_twisted.ensureDeferred
async def test_openai_tool_call_reply_helper(start_fake, http_pool):
    fake = start_fake(FakeOpenAI, keys={"k"})
    fake.script("POST", "/v1/chat/completions", fake.tool_call_reply("lookup", {"q": 1}))
    _, raw = await call(
        "POST",
        fake.url + "/v1/chat/completions",
        http_pool,
        headers={"Authorization": "Bearer k"},
        json={"model": "m", "messages": [MSG]},
    )
    call0 = json.loads(raw)["choices"][0]["message"]["tool_calls"][0]
    assert call0["function"] == {"name": "lookup", "arguments": '{"q":1}'}
    bad, raw = await call("POST", fake.url + "/v1/chat/completions", http_pool, json={"model": "m"})
    assert bad.code == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest_twisted.ensureDeferred
async def test_gemini_generate_stream_and_count(start_fake, http_pool):
    fake = start_fake(FakeGemini, keys={"g-key"})
    base = fake.url + "/v1beta/models/gemini-x:"
    hdr = {"x-goog-api-key": "g-key"}
    _, raw = await call("POST", base + "generateContent", http_pool, headers=hdr, json=GEMINI_BODY)
    resp = json.loads(raw)
    assert resp["candidates"][0]["content"]["parts"] == [{"text": "hello from fake-gemini"}]
    assert resp["modelVersion"] == "gemini-x"

    response, raw = await call(
        "POST", base + "streamGenerateContent?alt=sse&key=g-key", http_pool, json=GEMINI_BODY
    )
    assert b"\r\n\r\n" in raw  # Google frames SSE with CRLF
    chunks = [json.loads(e.data) for e in events_of(raw)]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert fake.last.key == "g-key"

    _, raw = await call(
        "POST", base + "streamGenerateContent", http_pool, headers=hdr, json=GEMINI_BODY
    )
    assert isinstance(json.loads(raw), list)  # no alt=sse: a streamed JSON array

    _, raw = await call("POST", base + "countTokens", http_pool, headers=hdr, json=GEMINI_BODY)
    assert json.loads(raw)["totalTokens"] > 0

    bad, raw = await call("POST", base + "generateContent", http_pool, json=GEMINI_BODY)
    assert bad.code == 401 and json.loads(raw)["error"]["status"] == "UNAUTHENTICATED"


@pytest_twisted.ensureDeferred
async def test_gemini_serves_vertex_paths_and_model_lists(fake_gemini, http_pool):
    path = "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-x:generateContent"
    response, raw = await call("POST", fake_gemini.url + path, http_pool, json=GEMINI_BODY)
    assert response.code == 200 and json.loads(raw)["modelVersion"] == "gemini-x"
    _, raw = await call("GET", fake_gemini.url + "/v1beta/models", http_pool)
    assert json.loads(raw)["models"][0]["name"] == "models/gemini-2.5-pro"


@pytest_twisted.ensureDeferred
async def test_codex_always_streams_with_empty_completed_output(fake_codex, http_pool):
    url = fake_codex.url + "/backend-api/codex/responses"
    refused, raw = await call("POST", url, http_pool, json={"model": "gpt-5.4", "input": []})
    assert refused.code == 400
    body = {
        "model": "gpt-5.4",
        "stream": True,
        "store": False,
        "instructions": "",
        "input": [{"role": "user", "content": "hi"}],
    }
    response, raw = await call("POST", url, http_pool, json=body)
    assert response.headers.getRawHeaders("content-type") == ["text/event-stream"]
    events = events_of(raw)
    assert events[-1].event == "response.completed"
    assert json.loads(events[-1].data)["response"]["output"] == []
    items = [json.loads(e.data)["item"] for e in events if e.event == "response.output_item.done"]
    assert items[0]["content"][0]["text"] == "hello from fake-codex"


@pytest_twisted.ensureDeferred
async def test_cloudcode_envelope_and_onboarding(fake_cloudcode, http_pool):
    url = fake_cloudcode.url + "/v1internal:"
    envelope = {"model": "gemini-2.5-pro", "project": "p", "request": GEMINI_BODY}
    _, raw = await call("POST", url + "generateContent", http_pool, json=envelope)
    parts = json.loads(raw)["response"]["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "hello from fake-gemini-cli"}]
    _, raw = await call("POST", url + "streamGenerateContent?alt=sse", http_pool, json=envelope)
    assert all("response" in json.loads(e.data) for e in events_of(raw))
    bad, _ = await call("POST", url + "generateContent", http_pool, json={"request": {}})
    assert bad.code == 400

    fake_cloudcode.project = None
    fake_cloudcode.onboard_pending = 1
    _, raw = await call("POST", url + "loadCodeAssist", http_pool, json={"metadata": {}})
    loaded = json.loads(raw)
    assert "cloudaicompanionProject" not in loaded
    assert [t["id"] for t in loaded["allowedTiers"] if t["isDefault"]] == ["free-tier"]
    _, first = await call("POST", url + "onboardUser", http_pool, json={"tierId": "free-tier"})
    _, second = await call("POST", url + "onboardUser", http_pool, json={"tierId": "free-tier"})
    assert json.loads(first)["done"] is False
    assert json.loads(second)["response"]["cloudaicompanionProject"]["id"] == "fake-project-123"


@pytest_twisted.ensureDeferred
async def test_turn_replies_take_reply_fields_for_odd_framing(fake_claude, http_pool):
    fake_claude.script_turn(Turn(text="split me"), split_every=7, chunk_delay=0.001)
    fake_claude.default("POST", "/v1/messages", fake_claude.default_answer(gzip=True))
    body = {"model": "m", "max_tokens": 8, "messages": [MSG], "stream": True}
    response = await treq.request(
        "POST", fake_claude.url + "/v1/messages", json=body, pool=http_pool, unbuffered=True
    )
    reads = []
    await treq.collect(response, reads.append)
    assert len(reads) > 10 and max(map(len, reads)) <= 7
    events = events_of(b"".join(reads))
    assert events[-1].event == "message_stop"
    # the default answer, gzip-encoded with the header: treq decodes it transparently
    _, raw = await call("POST", fake_claude.url + "/v1/messages", http_pool, json=body)
    assert events_of(raw)[-1].event == "message_stop"
    assert fake_claude.last.route == "default"
    invalid, _ = await call("POST", fake_claude.url + "/v1/messages", http_pool, json={})
    assert invalid.code == 400  # reshaping keeps the real validation
