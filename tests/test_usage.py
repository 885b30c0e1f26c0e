"""The one token-usage extractor, over every wire shape, and the usage book's read API."""

from __future__ import annotations

import json

import pytest

from cliproxy.formats.responses_side import Usage as TranslatorUsage
from cliproxy.usage import Totals, Usage, UsageBook, copy_usage, fold_usage, usage_of

# -- whole answers ------------------------------------------------------------------------

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 40,
        "total_tokens": 160,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
}
RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "output": [],
    "usage": {
        "input_tokens": 80,
        "input_tokens_details": {"cached_tokens": 64},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 110,
    },
}
CLAUDE = {
    "id": "msg_1",
    "type": "message",
    "content": [],
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 50,
        "output_tokens": 7,
    },
}
GEMINI = {
    "candidates": [],
    "usageMetadata": {
        "promptTokenCount": 33,
        "candidatesTokenCount": 9,
        "thoughtsTokenCount": 21,
        "cachedContentTokenCount": 16,
        "totalTokenCount": 63,
    },
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (CHAT, Usage(120, 40, 100, 12)),
        (RESPONSES, Usage(80, 30, 64, 20)),
        # Claude's cache reads and writes are prompt tokens too
        (CLAUDE, Usage(260, 7, 200, 0)),
        # Gemini's thoughts are output tokens and reasoning tokens
        (GEMINI, Usage(33, 30, 16, 21)),
        # Gemini CLI wraps the answer in `response`
        ({"response": GEMINI, "traceId": "t"}, Usage(33, 30, 16, 21)),
        # a Responses stream's response.completed event
        ({"type": "response.completed", "response": RESPONSES}, Usage(80, 30, 64, 20)),
        # Claude's message_start carries the input inside `message`
        (
            {"type": "message_start", "message": {**CLAUDE, "usage": {"input_tokens": 5}}},
            Usage(5, 0, 0, 0),
        ),
    ],
    ids=["chat", "responses", "claude", "gemini", "gemini-cli", "responses-event", "message"],
)
def test_usage_of_reads_every_wire_shape(body: dict[str, object], expected: Usage) -> None:
    assert usage_of(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        "usage",
        [CHAT],
        {"choices": []},
        {"usage": None},  # OpenAI stream chunks before the last
        {"response": {"status": "in_progress", "usage": None}},
    ],
)
def test_usage_of_is_none_where_nothing_is_reported(body: object) -> None:
    assert usage_of(body) is None


def test_counts_that_are_not_positive_integers_count_as_zero() -> None:
    body = {"usage": {"prompt_tokens": -3, "completion_tokens": True, "input_tokens": "9"}}
    assert usage_of(body) == Usage()


# -- streams ---------------------------------------------------------------------------------


def sse_events(text: str) -> list[object]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def test_claude_stream_takes_input_from_message_start_and_output_from_message_delta() -> None:
    events = sse_events(
        "event: message_start\n"
        'data: {"type":"message_start","message":{"id":"m","usage":'
        '{"input_tokens":12,"cache_read_input_tokens":30,"output_tokens":1}}}\n\n'
        'data: {"type":"content_block_delta","index":0,"delta":{"text":"hi"}}\n\n'
        'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        '"usage":{"output_tokens":15}}\n\n'
    )
    running = Usage()
    for event in events:
        fold_usage(event, running)
    assert running == Usage(42, 15, 30, 0)


def test_gemini_stream_counts_grow_and_the_largest_wins() -> None:
    running = Usage()
    for prompt, candidates in ((7, 1), (7, 4), (7, 9)):
        fold_usage(
            {"usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": candidates}},
            running,
        )
    assert running == Usage(7, 9, 0, 0)


def test_chat_stream_usage_arrives_in_the_last_chunk() -> None:
    running = Usage()
    fold_usage({"choices": [{"delta": {"content": "x"}}], "usage": None}, running)
    fold_usage({"choices": [], "usage": CHAT["usage"]}, running)
    assert running == Usage(120, 40, 100, 12)


# -- a translator's counts --------------------------------------------------------------------


def test_copy_usage_takes_a_translators_counts() -> None:
    counts = TranslatorUsage(input_tokens=5, output_tokens=6, cached_tokens=2, reasoning_tokens=1)
    counts.cache_creation_tokens = 9  # not one of ours
    assert copy_usage(counts) == Usage(5, 6, 2, 1)


def test_copy_usage_of_nothing_is_zero() -> None:
    assert copy_usage(None) == Usage()
    assert copy_usage("u") == Usage()


# -- the book ----------------------------------------------------------------------------------


def test_snapshot_totals_per_model_credential_route_and_client() -> None:
    now = [100.0]
    book = UsageBook(lambda: now[0])
    book.record(
        model="m1",
        provider="claude",
        credential_id="c1",
        client_key="sk-client-abcd",
        status=200,
        stream=True,
        usage=Usage(10, 5, 2, 1),
    )
    now[0] = 101.0
    book.record(
        model="m1",
        provider="codex",
        credential_id="c2",
        client_key=None,
        status=429,
        stream=False,
        route="mapped",
    )
    book.record(
        model="m2",
        provider="claude",
        credential_id="c1",
        client_key="sk-client-abcd",
        status=200,
        stream=False,
        usage=Usage(1, 1),
    )
    snap = book.snapshot(recent=2)
    assert snap.total == Totals(3, 1, 11, 6, 2, 1)
    assert snap.by_model == {"m1": Totals(2, 1, 10, 5, 2, 1), "m2": Totals(1, 0, 1, 1)}
    assert snap.by_credential == {"c1": Totals(2, 0, 11, 6, 2, 1), "c2": Totals(1, 1)}
    assert snap.by_route == {"local": Totals(2, 0, 11, 6, 2, 1), "mapped": Totals(1, 1)}
    assert snap.by_client == {"…abcd": Totals(2, 0, 11, 6, 2, 1), "-": Totals(1, 1)}
    assert [(r.time, r.model, r.status) for r in snap.recent] == [
        (101.0, "m1", 429),
        (101.0, "m2", 200),
    ]
    assert snap.as_dict()["by_model"] == {
        "m1": {
            "requests": 2,
            "failed": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "cached_tokens": 2,
            "reasoning_tokens": 1,
        },
        "m2": {
            "requests": 1,
            "failed": 0,
            "input_tokens": 1,
            "output_tokens": 1,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
        },
    }


def test_a_snapshot_does_not_change_when_more_is_recorded() -> None:
    book = UsageBook(lambda: 0.0)
    snap = book.snapshot()
    assert snap.total == Totals() and snap.by_model == {} and snap.recent == ()
    book.record(
        model="m", provider="p", credential_id="c", client_key=None, status=200, stream=False
    )
    assert snap.by_model == {} and snap.total == Totals()
    assert book.snapshot().by_model == {"m": Totals(1)}


def test_the_book_keeps_only_the_last_records_but_every_total() -> None:
    book = UsageBook(lambda: 0.0, keep=2)
    for i in range(3):
        book.record(
            model=f"m{i}",
            provider="p",
            credential_id="c",
            client_key=None,
            status=200,
            stream=False,
        )
    snap = book.snapshot(recent=10)
    assert [r.model for r in snap.recent] == ["m1", "m2"]
    assert snap.total.requests == 3
