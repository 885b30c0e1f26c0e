"""The byte plan of a `Reply`, checked without sockets."""

import gzip
import json
import zlib

import pytest

from tests.fakes import HAVE_ZSTD, Event, Pause, Reply, plan_reply, sse_bytes


def _headers(plan):
    return {n.lower(): v for n, v in plan.headers}


def test_json_reply_has_content_length_and_compact_body():
    plan = plan_reply(Reply(201, json={"a": "é"}))
    assert plan.status == 201
    assert plan.body == '{"a":"é"}'.encode()
    h = _headers(plan)
    assert h["content-type"] == "application/json"
    assert h["content-length"] == str(len(plan.body))
    assert plan.after == "finish"


def test_sse_items_encode_each_as_one_write_with_delays():
    plan = plan_reply(
        Reply(
            sse=[
                {"x": 1},
                Event("y", event="e", id="7", delay=0.5),
                Pause(2),
                "[DONE]",
                b": c\n\n",
            ],
            chunk_delay=0.1,
        )
    )
    assert [p.data for p in plan.pieces] == [
        b'data: {"x":1}\n\n',
        b"event: e\nid: 7\ndata: y\n\n",
        b"data: [DONE]\n\n",
        b": c\n\n",
    ]
    assert [p.delay for p in plan.pieces] == [0.0, 0.5, 2.0, 0.1]
    h = _headers(plan)
    assert h["content-type"] == "text/event-stream"
    assert "content-length" not in h
    assert plan.commit_headers_first


def test_sse_crlf_and_multiline_data():
    assert Event("a\nb", event="m").encode("\r\n") == b"event: m\r\ndata: a\r\ndata: b\r\n\r\n"
    assert sse_bytes([{"k": 2}, Pause(1)], "\r\n") == b'data: {"k":2}\r\n\r\n'


def test_split_at_cuts_the_wire_body_at_exact_offsets():
    body = "data: é\r\n\r\n".encode()
    cut_in_utf8 = body.index(b"\xc3") + 1
    plan = plan_reply(Reply(chunks=[body], split_at=[cut_in_utf8, body.index(b"\r") + 1]))
    assert [p.data for p in plan.pieces] == [b"data: \xc3", b"\xa9\r", b"\n\r\n"]


def test_split_every_and_chunk_delay():
    plan = plan_reply(Reply(body=b"abcdefg", split_every=3, chunk_delay=0.2))
    assert [p.data for p in plan.pieces] == [b"abc", b"def", b"g"]
    assert [p.delay for p in plan.pieces] == [0.0, 0.2, 0.2]
    assert _headers(plan)["content-length"] == "7"


def test_gzip_streams_flush_per_write_and_header_can_be_omitted():
    plan = plan_reply(Reply(chunks=[b"hello ", b"world"], gzip=True, content_encoding=False))
    assert "content-encoding" not in _headers(plan)
    d = zlib.decompressobj(wbits=31)
    # each write decodes on its own, as a streaming client would need
    assert d.decompress(plan.pieces[0].data) == b"hello "
    assert d.decompress(plan.pieces[1].data) == b"world"
    assert gzip.decompress(plan.body) == b"hello world"
    assert _headers(plan_reply(Reply(json={}, gzip=True)))["content-encoding"] == "gzip"


@pytest.mark.skipif(not HAVE_ZSTD, reason="zstandard not installed")
def test_zstd_body_round_trips():
    import zstandard

    plan = plan_reply(Reply(json={"z": 1}, zstd=True))
    assert _headers(plan)["content-encoding"] == "zstd"
    out = zstandard.ZstdDecompressor().decompressobj().decompress(plan.body)
    assert json.loads(out) == {"z": 1}


def test_reset_after_truncates_but_keeps_declared_length():
    plan = plan_reply(Reply(body=b"0123456789", reset_after=4, chunked=False))
    assert plan.body == b"0123"
    assert plan.after == "reset"
    assert _headers(plan)["content-length"] == "10"
    assert plan_reply(Reply(chunks=[b"ab", b"cd"], close_after=3)).after == "close"


def test_hang_without_body_sends_nothing_but_a_stream_commits_headers():
    silent = plan_reply(Reply(hang=True))
    assert silent.after == "hang" and not silent.commit_headers_first and not silent.pieces
    opened = plan_reply(Reply(sse=[], hang=True))
    assert opened.commit_headers_first and opened.after == "hang"


def test_hanging_gzip_stream_never_sends_the_trailer():
    plan = plan_reply(Reply(chunks=[b"abc"], gzip=True, hang=True))
    d = zlib.decompressobj(wbits=31)
    assert d.decompress(plan.body) == b"abc"
    assert not d.eof


def test_headers_retry_after_and_overrides():
    plan = plan_reply(
        Reply(429, json={}, retry_after=30.0, headers={"Content-Type": "x/y", "X-A": ["1", "2"]})
    )
    assert ("Retry-After", "30") in plan.headers
    assert ("Content-Type", "x/y") in plan.headers
    assert [v for n, v in plan.headers if n == "X-A"] == ["1", "2"]
    assert not any(v == "application/json" for _, v in plan.headers)
