"""The same-format fast path: exact upstream bytes out, usage and the end noticed on the side."""

from __future__ import annotations

import json

import pytest

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEDecoder
from tests.formats.test_resp_clients import READERS, assert_sees, read_gemini_array
from tests.formats.test_resp_samples import SAMPLE_IDS, SAMPLES, Sample, events_of
from tests.formats.test_resp_stream import run, sample, translator

CLIENTS = list(Format)


@pytest.mark.parametrize("s", SAMPLES, ids=SAMPLE_IDS)
def test_pass_through_relays_the_exact_upstream_bytes(s: Sample):
    body, t = run(s.provider, s.provider, events_of(s.body))
    seen = READERS[s.provider](body)
    assert_sees(s.provider, seen, s)
    assert t.done
    e = s.expected
    assert (t.usage.input_tokens, t.usage.output_tokens) == (e.input_tokens, e.output_tokens)
    assert (t.usage.cached_tokens, t.usage.reasoning_tokens) == (
        e.cached_tokens,
        e.reasoning_tokens,
    )
    last = events_of(s.body)[-1].data
    if s.provider is Format.OPENAI_RESPONSES and not json.loads(last)["response"]["output"]:
        # only the empty response.completed is rewritten, with the items back-filled
        assert body.startswith(s.body[: s.body.rindex(b"event: response.")])
        final = json.loads(events_of(body)[-1].data)
        assert [i["type"] for i in final["response"]["output"]] in (
            ["reasoning", "message"],
            ["message"],
        )
        assert final["sequence_number"] == json.loads(events_of(s.body)[-1].data)["sequence_number"]
    else:
        assert body == s.body


def test_pass_through_does_not_parse_events_that_carry_nothing_it_needs():
    broken = b"event: content_block_delta\ndata: {broken}\n\n"
    t = translator(Format.CLAUDE, Format.CLAUDE)
    assert t.feed(events_of(broken)[0]) == [broken]
    assert t.skipped == 0
    t = translator(Format.OPENAI_CHAT, Format.OPENAI_CHAT)
    assert t.feed(events_of(b"data: {broken}\n\n")[0]) == [b"data: {broken}\n\n"]
    # include_usage puts "usage":null on every chunk: not a reason to parse it
    chunk = b'data: {"choices":[{"delta":{"content":"x"}}],"usage":null,"error"}\n\n'
    assert t.feed(events_of(chunk)[0]) == [chunk]
    assert t.skipped == 0
    t = translator(Format.GEMINI, Format.GEMINI)
    first = b'data: {"usageMetadata":{"promptTokenCount":5}}\n\n'
    later = b'data: {"usageMetadata":{"promptTokenCount":5}, broken}\n\n'
    assert t.feed(events_of(first)[0]) == [first]
    assert t.feed(events_of(later)[0]) == [later]
    assert (t.skipped, t.usage.input_tokens) == (0, 5)


@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_pass_through_ends_at_the_terminal_event(provider):
    events = events_of(sample(provider, "tool").body)
    t = translator(provider, provider)
    for event in events:
        t.feed(event)
    assert t.done
    assert t.feed(events[-1]) == [] and t.finish() == [] and t.error(500, "x") == []


def test_chat_pass_through_with_finish_reason_but_no_done_marker_gets_done_added():
    body, t = run(
        Format.OPENAI_CHAT,
        Format.OPENAI_CHAT,
        events_of(sample(Format.OPENAI_CHAT, "tool").body)[:-1],
    )
    assert body.endswith(b"data: [DONE]\n\n")
    assert READERS[Format.OPENAI_CHAT](body).finish == "tool_calls"


def test_claude_pass_through_with_stop_reason_but_no_message_stop_gets_it_added():
    body, _ = run(Format.CLAUDE, Format.CLAUDE, events_of(sample(Format.CLAUDE, "tool").body)[:-1])
    assert body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    READERS[Format.CLAUDE](body)


@pytest.mark.parametrize("provider", CLIENTS, ids=[c.value for c in CLIENTS])
def test_pass_through_cut_in_the_middle_ends_with_an_error_event(provider):
    events = events_of(sample(provider, "reasoning").body)
    body, t = run(provider, provider, events[: len(events) // 2])
    seen = READERS[provider](body)
    assert seen.error is not None
    assert t.done


def test_responses_pass_through_error_continues_the_upstream_sequence_numbers():
    events = events_of(sample(Format.OPENAI_RESPONSES, "tool").body)
    t = translator(Format.OPENAI_RESPONSES, Format.OPENAI_RESPONSES)
    out = []
    for event in events[:5]:
        out += t.feed(event)
    out += t.error(504, "upstream idle")
    tail = [json.loads(e.data) for e in events_of(b"".join(out))[-2:]]
    assert [e["type"] for e in tail] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in tail] == [5, 6]
    assert tail[1]["response"]["id"] == "resp_68af4030592c81938ec0a5fbab4a3e9f"
    READERS[Format.OPENAI_RESPONSES](b"".join(out))


def test_responses_pass_through_upstream_error_then_close_adds_nothing():
    body = (
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
        b'"response":{"id":"resp_1","status":"in_progress","output":[]}}\n\n'
        b'event: error\ndata: {"type":"error","code":"rate_limit_exceeded","message":"slow",'
        b'"sequence_number":1}\n\n'
    )
    out, t = run(Format.OPENAI_RESPONSES, Format.OPENAI_RESPONSES, events_of(body))
    assert out == body
    assert t.done


@pytest.mark.parametrize(
    "provider,error",
    [
        (
            Format.CLAUDE,
            b'event: error\ndata: {"type":"error",'
            b'"error":{"type":"overloaded_error","message":"o"}}\n\n',
        ),
        (Format.OPENAI_CHAT, b'data: {"error":{"message":"m","type":"server_error"}}\n\n'),
        (Format.GEMINI, b'data: {"error":{"code":500,"message":"m","status":"INTERNAL"}}\n\n'),
    ],
)
def test_pass_through_relays_an_upstream_error_event_and_stops(provider, error):
    events = events_of(sample(provider, "tool").body)[:2] + events_of(error)
    out, t = run(provider, provider, events)
    assert out.endswith(error)
    assert t.done
    assert READERS[provider](out).error is not None


def test_pass_through_drops_half_an_event_cut_by_the_close_and_ends_with_an_error():
    body = sample(Format.CLAUDE, "tool").body
    cut = body[: body.index(b'"partial_json"') + 10]
    decoder = SSEDecoder()
    events = decoder.feed(cut) + decoder.close()
    out, t = run(Format.CLAUDE, Format.CLAUDE, events)
    assert t.skipped == 1
    assert READERS[Format.CLAUDE](out).error is not None


def test_pass_through_completes_an_unterminated_but_whole_last_event():
    body = sample(Format.CLAUDE, "tool").body.rstrip(b"\n")
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.close()
    out, t = run(Format.CLAUDE, Format.CLAUDE, events)
    assert out == body + b"\n\n"
    assert t.done


def test_gemini_pass_through_without_alt_sse_reframes_as_one_json_array():
    s = sample(Format.GEMINI, "reasoning")
    out, t = run(Format.GEMINI, Format.GEMINI, events_of(s.body), gemini_sse=False)
    seen = read_gemini_array(out)
    assert (seen.text, seen.thinking, seen.finish) == (s.expected.text, s.expected.thinking, "STOP")
    assert t.done


def test_gemini_pass_through_array_mode_cut_short_closes_the_array_with_the_error():
    s = sample(Format.GEMINI, "reasoning")
    out, _ = run(Format.GEMINI, Format.GEMINI, events_of(s.body)[:2], gemini_sse=False)
    seen = read_gemini_array(out)
    assert seen.error["status"] == "UNAVAILABLE" or seen.error["code"] == 502
