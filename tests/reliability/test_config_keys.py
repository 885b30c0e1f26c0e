"""Config keys that change how a client's request is carried: `streaming.bootstrap-retries`
and `nonstream-keepalive-interval`, over real sockets in front of fake upstreams."""

from __future__ import annotations

import pytest_twisted

from tests.fakes import FakeOpenAI, Reply
from tests.reliability.kit import call, sse_data
from tests.serving_kit import providers

CHAT = "/v1/chat/completions"
STREAM = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def empty_stream() -> Reply:
    """A 200 event stream that ends before its first event."""
    return Reply(sse=[], chunked=True)


@pytest_twisted.ensureDeferred
async def test_without_bootstrap_retries_an_empty_stream_is_a_502(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", oai.generation_path, empty_stream())
    proxy = start_proxy(providers(oai=oai))
    answer = await call(proxy.url, "POST", CHAT, STREAM)
    assert answer.status == 502
    assert "before sending anything" in answer.json()["error"]["message"]
    assert len(oai.requests) == 1


@pytest_twisted.ensureDeferred
async def test_bootstrap_retries_rerun_a_stream_that_failed_before_its_first_byte(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", oai.generation_path, empty_stream(), empty_stream())
    proxy = start_proxy(providers(oai=oai, extra="streaming:\n  bootstrap-retries: 2\n"))
    answer = await call(proxy.url, "POST", CHAT, STREAM)
    assert answer.status == 200
    assert sse_data(answer.body)[-1] == "[DONE]"
    assert len(oai.requests) == 3  # two empty streams, then the answer


@pytest_twisted.ensureDeferred
async def test_bootstrap_retries_are_bounded_and_skip_requests_at_fault(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", oai.generation_path, empty_stream(), empty_stream())
    proxy = start_proxy(providers(oai=oai, extra="streaming:\n  bootstrap-retries: 1\n"))
    assert (await call(proxy.url, "POST", CHAT, STREAM)).status == 502
    assert len(oai.requests) == 2
    oai.script_error(400, "bad field")
    bad = await call(proxy.url, "POST", CHAT, STREAM)
    assert bad.status == 400
    assert len(oai.requests) == 3  # a request the provider rejects is not re-run


BODY = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
KEEPALIVE = "nonstream-keepalive-interval: 0.05\n"


@pytest_twisted.ensureDeferred
async def test_a_waiting_non_stream_client_gets_newlines_then_its_json(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", oai.generation_path, oai.text_reply("slow answer", delay=0.5))
    proxy = start_proxy(providers(oai=oai, extra=KEEPALIVE))
    answer = await call(proxy.url, "POST", CHAT, BODY)
    assert answer.status == 200
    assert answer.header("content-type") == "application/json"
    assert answer.body.startswith(b"\n") and answer.body.strip().startswith(b"{")
    assert answer.json()["choices"][0]["message"]["content"] == "slow answer"


@pytest_twisted.ensureDeferred
async def test_an_error_after_keepalives_is_the_body_of_the_200(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script(
        "POST", oai.generation_path, Reply(429, json={"error": {"message": "slow down"}}, delay=0.5)
    )
    proxy = start_proxy(providers(oai=oai, extra=KEEPALIVE))
    answer = await call(proxy.url, "POST", CHAT, BODY)
    assert answer.status == 200  # committed by the first newline
    assert answer.body.startswith(b"\n")
    assert "slow down" in answer.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_a_quick_answer_and_streams_get_no_newlines(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai, extra="nonstream-keepalive-interval: 30\n"))
    answer = await call(proxy.url, "POST", CHAT, BODY)
    assert answer.status == 200 and answer.body.startswith(b"{")
    assert answer.header("content-length") == str(len(answer.body))
    oai.script("POST", oai.generation_path, oai.text_reply("x", delay=0.3))
    proxy.reconfigure(providers(oai=oai, extra=KEEPALIVE))
    streamed = await call(proxy.url, "POST", CHAT, {**BODY, "stream": True})
    assert streamed.status == 200 and not streamed.body.startswith(b"\n")
