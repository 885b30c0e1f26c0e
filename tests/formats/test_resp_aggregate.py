"""Stream → whole response, in the provider's own format (Codex streams even non-stream calls)."""

from __future__ import annotations

import pytest

from cliproxy.formats import Format
from cliproxy.formats.responses_side import AggregateError, aggregate_stream
from tests.formats.test_resp_clients import assert_sees
from tests.formats.test_resp_nonstream import BODY_READERS, aggregated
from tests.formats.test_resp_samples import (
    CLAUDE_SIG,
    SAMPLE_IDS,
    SAMPLES,
    Sample,
    events_of,
    sse_data,
    sse_named,
)
from tests.formats.test_resp_stream import sample

CLIENTS = list(Format)


@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_aggregate_builds_the_providers_own_whole_response(s: Sample):
    body = aggregated(s)
    seen = BODY_READERS[s.provider](body)
    assert_sees(s.provider, seen, s)
    assert seen.model == s.upstream_model


def test_claude_aggregate_is_a_real_message():
    body = aggregated(sample(Format.CLAUDE, "reasoning"))
    assert body["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert body["content"] == [
        {"type": "thinking", "thinking": "The user wants a greeting.", "signature": CLAUDE_SIG},
        {"type": "text", "text": "Hello there! ✓"},
    ]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 30}


def test_claude_aggregate_parses_tool_input():
    body = aggregated(sample(Format.CLAUDE, "tool"))
    tool = body["content"][1]
    assert tool["input"] == {"location": "Paris", "unit": "celsius"}
    assert body["usage"]["cache_read_input_tokens"] == 10


def test_responses_aggregate_back_fills_an_empty_output_from_output_item_done():
    body = aggregated(sample(Format.OPENAI_RESPONSES, "reasoning"))
    assert [item["type"] for item in body["output"]] == ["reasoning", "message"]
    assert body["output"][0]["encrypted_content"].startswith("gAAAA")
    assert body["status"] == "completed"


def test_responses_aggregate_keeps_a_full_output_as_is():
    s = sample(Format.OPENAI_RESPONSES, "tool")
    body = aggregated(s)
    assert [item["type"] for item in body["output"]] == ["message", "function_call"]


def test_chat_aggregate_joins_deltas_and_tool_arguments():
    body = aggregated(sample(Format.OPENAI_CHAT, "tool"))
    message = body["choices"][0]["message"]
    assert message["content"] == "Let me check the weather."
    assert message["tool_calls"][0]["function"]["arguments"] == (
        '{"location": "Paris", "unit": "celsius"}'
    )
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 88
    assert body["system_fingerprint"] == "fp_x"


def test_gemini_aggregate_merges_neighbouring_texts_and_keeps_the_signature():
    body = aggregated(sample(Format.GEMINI, "reasoning"))
    parts = body["candidates"][0]["content"]["parts"]
    assert parts == [
        {
            "text": "The user wants a greeting.",
            "thought": True,
            "thoughtSignature": "CiQB0e2Kb-thought-signature",
        },
        {"text": "Hello there! ✓"},
    ]
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["thoughtsTokenCount"] == 8


@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_aggregate_of_a_stream_cut_short_raises(provider):
    events = events_of(sample(provider, "tool").body)
    aggregator = aggregate_stream(provider)
    for event in events[: len(events) // 2]:
        aggregator.feed(event)
    with pytest.raises(AggregateError) as caught:
        aggregator.result()
    assert caught.value.status == 502


UPSTREAM_ERRORS = [
    (
        Format.CLAUDE,
        sse_named(
            [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
        ),
        529,
        "Overloaded",
    ),
    (
        Format.OPENAI_CHAT,
        sse_data(
            [
                {
                    "error": {
                        "message": "quota",
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                    }
                }
            ]
        ),
        429,
        "quota",
    ),
    (
        Format.OPENAI_RESPONSES,
        sse_named(
            [
                {
                    "type": "response.failed",
                    "response": {"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
                }
            ]
        ),
        429,
        "slow down",
    ),
    (
        Format.GEMINI,
        sse_data([{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}]),
        400,
        "bad",
    ),
]


@pytest.mark.parametrize("provider,stream,status,message", UPSTREAM_ERRORS)
def test_aggregate_of_a_stream_that_reports_an_error_raises_it(provider, stream, status, message):
    aggregator = aggregate_stream(provider)
    for event in events_of(sample(provider, "tool").body)[:2] + events_of(stream):
        aggregator.feed(event)
    with pytest.raises(AggregateError) as caught:
        aggregator.result()
    assert (caught.value.status, caught.value.message) == (status, message)


def test_aggregate_skips_events_that_are_not_json():
    aggregator = aggregate_stream(Format.OPENAI_CHAT)
    noisy = b"data: {oops\n\n" + sample(Format.OPENAI_CHAT, "length").body
    for event in events_of(noisy):
        aggregator.feed(event)
    assert aggregator.skipped == 1
    assert aggregator.result()["choices"][0]["message"]["content"] == "Once upon a"
    assert aggregator.usage.output_tokens == 3
