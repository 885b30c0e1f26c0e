"""SSEDecoder: the events (and the raw bytes a pass-through relays) never depend on the splits."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.formats.sse import SSEDecoder, SSEEvent, encode_event

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def shape(events: list[SSEEvent]) -> list[tuple[bytes, str | None, str | None, bytes]]:
    return [(e.data, e.event, e.id, e.raw) for e in events]


line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12
)
fields = st.lists(
    st.tuples(st.sampled_from(["data", "event", "id", "", "retry"]), line_text),
    min_size=1,
    max_size=4,
)


@st.composite
def streams(draw) -> bytes:
    """Events of a few fields, every line ended by the same LF, CRLF or CR, as upstreams do."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    out = b""
    for event in draw(st.lists(fields, min_size=1, max_size=5)):
        for name, value in event:
            line = f"{name}: {value}" if name else f": {value}"
            out += line.encode() + eol
        out += eol
    return out


@PROPERTY
@given(body=streams(), cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=30))
def test_any_split_gives_the_same_events_and_raw_bytes(body, cuts):
    assert shape(decode(split(body, cuts))) == shape(decode([body]))


@PROPERTY
@given(body=streams())
def test_each_events_raw_bytes_are_its_whole_slice_of_the_stream(body):
    # (events of comments only are dropped, their bytes with them)
    events = decode([body[i : i + 1] for i in range(len(body))])
    at = 0
    for e in events:
        found = body.find(e.raw, at)
        assert found >= 0
        at = found + len(e.raw)
        assert e.raw.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))


def test_crlf_split_between_cr_and_lf_keeps_the_blank_line_in_the_first_event():
    body = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'
    cut = body.index(b"\r\n\r\n") + 3  # after the second CR
    first, second = decode([body[:cut], body[cut:]])
    assert first.raw == b'data: {"a":1}\r\n\r\n'
    assert second.raw == b'data: {"b":2}\r\n\r\n'


def test_cr_line_end_is_held_until_the_next_byte_or_close():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == []  # an LF may still follow the second CR
    [event] = decoder.close()
    assert (event.data, event.raw) == (b"x", b"data: x\r\r")


@PROPERTY
@given(
    data=st.lists(line_text, min_size=1, max_size=3).map(lambda ls: "\n".join(ls)),
    event=st.none() | line_text,
)
def test_encode_then_decode_gives_the_event_back(data, event):
    [decoded] = decode([encode_event(data, event)])
    assert decoded.text == data
    assert decoded.event == event
