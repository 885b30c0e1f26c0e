"""Property tests: split points, truncation, arbitrary text and junk, for every pair."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEDecoder
from tests.formats.test_resp_clients import READERS
from tests.formats.test_resp_samples import SAMPLES, sse_data
from tests.formats.test_resp_stream import run, translator

CLIENTS = list(Format)
SETTINGS = settings(
    max_examples=int(os.environ.get("RESP_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def feed_chunks(provider: Format, client: Format, chunks: list[bytes], **kw) -> bytes:
    t = translator(provider, client, **kw)
    decoder = SSEDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            out += t.feed(event)
    for event in decoder.close():
        out += t.feed(event)
    out += t.finish()
    return b"".join(out)


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(body[start:point])
        start = point
    pieces.append(body[start:])
    return pieces


@SETTINGS
@given(
    s=st.sampled_from(SAMPLES),
    client=st.sampled_from(CLIENTS),
    cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=40),
)
def test_any_split_of_the_upstream_bytes_gives_the_same_client_output(s, client, cuts):
    whole = feed_chunks(s.provider, client, [s.body])
    assert feed_chunks(s.provider, client, split(s.body, cuts)) == whole


@SETTINGS
@given(
    s=st.sampled_from(SAMPLES),
    client=st.sampled_from(CLIENTS),
    data=st.data(),
)
def test_any_truncation_ends_in_exactly_one_terminal_the_client_can_read(s, client, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(s.body)))
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=cut), max_size=5))
    body = feed_chunks(s.provider, client, split(s.body[:cut], cuts))
    seen = READERS[client](body)  # strict: one terminal, nothing after it
    assert seen.error is not None or seen.finish is not None


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)


def _chat_stream(pieces: list[str], args: str) -> bytes:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks: list[object] = [
        dict(head, choices=[{"index": 0, "delta": {"content": p}, "finish_reason": None}])
        for p in pieces
    ]
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": args}}
    chunks.append(
        dict(head, choices=[{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
    )
    chunks.append(dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    chunks.append(b"[DONE]")
    return sse_data(chunks)


@SETTINGS
@given(
    client=st.sampled_from(CLIENTS),
    pieces=st.lists(TEXT, max_size=8),
    arg=st.dictionaries(TEXT, TEXT, max_size=3),
)
def test_arbitrary_unicode_text_and_arguments_survive_every_client(client, pieces, arg):
    args = json.dumps(arg, ensure_ascii=False)
    body, t = run(Format.OPENAI_CHAT, client, _events(_chat_stream(pieces, args)))
    seen = READERS[client](body)
    assert seen.text == "".join(pieces)
    assert seen.tool_calls() == [("f", arg)]
    assert t.done


JUNK = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(TEXT, TEXT, max_size=3)),
    st.sampled_from(
        [
            b'{"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta"}}',
            b'{"type":"content_block_stop","index":0}',
            b'{"type":"response.output_item.done","item":{"type":"function_call"}}',
            b'{"type":"response.function_call_arguments.delta","item_id":"nope","delta":"x"}',
            b'{"choices":[{"delta":{"tool_calls":[{"index":"x"}]}}]}',
            b'{"candidates":[{"content":{"parts":[{"functionCall":null}]}}]}',
            b'{"candidates":[{"content":{"parts":"x"}}]}',
            b'{"usage":{"prompt_tokens":"many"}}',
            b'{"usageMetadata":[]}',
            b"[DONE]",
        ]
    ),
)


def _events(body: bytes):
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


@SETTINGS
@given(
    s=st.sampled_from(SAMPLES),
    client=st.sampled_from(CLIENTS),
    junk=st.lists(st.tuples(st.integers(min_value=0, max_value=40), JUNK), max_size=6),
)
def test_junk_events_anywhere_never_raise_and_the_stream_still_ends_once(s, client, junk):
    events = _events(s.body)
    for position, data in sorted(junk, key=lambda j: -j[0]):
        line = b"data: " + data.replace(b"\r", b"").replace(b"\n", b"") + b"\n\n"
        events[position % (len(events) + 1) : position % (len(events) + 1)] = _events(line)
    t = translator(s.provider, client)
    out: list[bytes] = []
    for event in events:
        out += t.feed(event)
    out += t.finish()
    assert t.done
    assert t.finish() == [] and t.error(500, "x") == []
    body = b"".join(out)
    if s.provider is not client:  # the fast path relays junk as it came
        seen = READERS[client](body)  # still a stream the client can read to its end
        assert seen.error is not None or seen.finish is not None


@SETTINGS
@given(
    s=st.sampled_from(SAMPLES),
    client=st.sampled_from(CLIENTS),
    gemini_sse=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=40),
)
def test_any_split_of_crlf_framed_upstream_bytes_gives_the_same_client_output(
    s, client, gemini_sse, cuts
):
    # Google frames SSE with CRLF; a split between CR and LF must not change a relayed byte
    body = s.body.replace(b"\n", b"\r\n")
    kw = {"gemini_sse": gemini_sse} if client is Format.GEMINI else {}
    whole = feed_chunks(s.provider, client, [body], **kw)
    assert feed_chunks(s.provider, client, split(body, cuts), **kw) == whole
