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
