"""Compression sniffing and bounded incremental decoding, including the PRX-08 table."""

from __future__ import annotations

import gzip
import zlib

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.upstream.body import (
    BodyDecodeError,
    BodyTooLarge,
    Decompressor,
    declared_encoding,
    decode_body,
    detect_encoding,
    may_be_magic,
)

TEXT = b'data: {"type":"message_start"}\n\n' * 50


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    "first, expected",
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (b"data: {}", None),
        (b"\x1f", None),
        (b"", None),
    ],
)
def test_detect_encoding_by_magic(first, expected):
    assert detect_encoding(first) == expected


def test_may_be_magic_only_for_short_prefixes():
    assert may_be_magic(b"") and may_be_magic(b"\x1f") and may_be_magic(b"\x28\xb5\x2f")
    assert not may_be_magic(b"da") and not may_be_magic(b"\x28\xb5\x2f\xfd")


def test_declared_encoding_reads_the_header():
    from twisted.web.http_headers import Headers

    assert declared_encoding(Headers({b"Content-Encoding": [b"ZSTD"]})) == "zstd"
    assert declared_encoding(Headers({b"Content-Encoding": [b"identity"]})) is None
    assert declared_encoding(Headers({})) is None
    assert declared_encoding(Headers({b"Content-Encoding": [b"gzip, br"]})) == "gzip, br"


# (hypothesis is not combined with parametrize here: pytest-twisted trips over the pair)
@given(
    codec=st.sampled_from([(gzip.compress, "gzip"), (_zstd, "zstd")]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_decoding_is_the_same_whatever_the_split(codec, cuts):
    pack, encoding = codec
    packed = pack(TEXT)
    points = sorted({c % (len(packed) + 1) for c in cuts})
    pieces = [packed[a:b] for a, b in zip([0, *points], [*points, len(packed)], strict=True)]
    d = Decompressor(encoding)
    assert b"".join(d.feed(p) for p in pieces) + d.flush() == TEXT


def test_deflate_and_x_gzip_names_are_understood():
    d = Decompressor(b"deflate")
    assert d.feed(zlib.compress(b"abc")) + d.flush() == b"abc"
    d = Decompressor("x-gzip")
    assert d.feed(gzip.compress(b"abc")) + d.flush() == b"abc"


def test_unknown_encoding_is_refused():
    with pytest.raises(BodyDecodeError):
        Decompressor("br")


@pytest.mark.parametrize("pack, encoding", [(gzip.compress, "gzip"), (_zstd, "zstd")])
def test_bombs_stop_at_the_output_bound(pack, encoding):
    bomb = pack(b"\0" * 50_000_000)
    d = Decompressor(encoding, max_output=1_000_000)
    with pytest.raises(BodyTooLarge):
        d.feed(bomb)
    # it stopped within one step of the bound, not after expanding everything
    assert d.total_out < 2_000_000


def test_truncated_gzip_is_reported_at_flush():
    d = Decompressor("gzip")
    d.feed(gzip.compress(TEXT)[:-8])
    with pytest.raises(BodyDecodeError, match="truncated"):
        d.flush()


def test_concatenated_gzip_members_and_trailing_garbage():
    d = Decompressor("gzip")
    out = d.feed(gzip.compress(b"one ") + gzip.compress(b"two") + b"\0\0junk")
    assert out + d.flush() == b"one two"


def test_corrupt_data_is_a_decode_error():
    with pytest.raises(BodyDecodeError):
        Decompressor("gzip").feed(b"\x1f\x8b\x08\x00garbage-garbage-garbage")


# PRX-08: a body without Content-Encoding is decoded only when it really is gzip/zstd
@pytest.mark.parametrize(
    "raw, expected",
    [
        (gzip.compress(b'{"ok":1}'), b'{"ok":1}'),
        (_zstd(b'{"ok":1}'), b'{"ok":1}'),
        (gzip.compress(b'{"ok":1}')[:10], gzip.compress(b'{"ok":1}')[:10]),  # truncated
        (b"\x1f\x8bgarbage", b"\x1f\x8bgarbage"),
        (b"plain text", b"plain text"),
        (b"", b""),
        (b"\x1f", b"\x1f"),
    ],
)
def test_sniffed_bodies_decode_or_pass_through_unchanged(raw, expected):
    assert decode_body(raw, None, 1 << 20) == expected


def test_declared_encoding_that_does_not_decode_is_an_error():
    with pytest.raises(BodyDecodeError):
        decode_body(b"not gzip at all", "gzip", 1 << 20)


def test_declared_unsupported_encoding_is_an_error():
    with pytest.raises(BodyDecodeError, match="br"):
        decode_body(b"\x0b\x02\x80", "br", 1 << 20)
