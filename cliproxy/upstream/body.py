# -*- test-case-name: tests.upstream.test_body -*-
"""Upstream response bodies: compression sniffing, bounded incremental decompression,
and `read_body` for small (non-stream) answers.

Upstreams sometimes send gzip or zstd without a `Content-Encoding` header, so the first
bytes are checked for magic numbers. Decompressed output is bounded so a small
"bomb" cannot take the process's memory.
"""

from __future__ import annotations

import zlib

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from cliproxy.credentials.net import body_transport

try:
    import zstandard
except ImportError:  # pragma: no cover - Debian 12 may lack python3-zstandard
    _ZSTD = False
else:
    _ZSTD = True

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: the longest magic number: how many first bytes `detect_encoding` wants to see
SNIFF_BYTES = len(ZSTD_MAGIC)

#: `Content-Encoding` values we can undo, by what they mean
_DECODABLE = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "zstd": "zstd"}

#: output produced per decompression step; bounds the memory of one step
_STEP = 256 * 1024


class BodyTooLarge(Exception):
    """The body (raw or decompressed) is bigger than the caller's limit."""


class BodyDecodeError(Exception):
    """The body claims (or looks like) an encoding but does not decode."""


def zstd_available() -> bool:
    return _ZSTD


def accept_encoding() -> str:
    """What we can decode, for a non-stream request's `Accept-Encoding`."""
    return "gzip, zstd" if _ZSTD else "gzip"


def detect_encoding(first_bytes: bytes) -> str | None:
    """`"gzip"` or `"zstd"` when the body starts with that format's magic number."""
    if first_bytes.startswith(GZIP_MAGIC):
        return "gzip"
    if first_bytes.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def may_be_magic(first_bytes: bytes) -> bool:
    """True while `first_bytes` is too short to tell: it is a prefix of a magic number."""
    return len(first_bytes) < SNIFF_BYTES and (
        GZIP_MAGIC.startswith(first_bytes) or ZSTD_MAGIC.startswith(first_bytes)
    )


def declared_encoding(headers: Headers) -> str | None:
    """The response's `Content-Encoding`, lowercased; `None` when absent or `identity`.

    `headers` is a Twisted `Headers`. Several codings (`gzip, zstd`) come back joined,
    which `Decompressor` refuses.
    """
    values = headers.getRawHeaders(b"content-encoding") or []
    tokens = [t.strip().lower() for v in values for t in v.decode("latin-1").split(",")]
    tokens = [t for t in tokens if t and t != "identity"]
    return ", ".join(tokens) or None


class _Sink:
    """Where zstandard's stream_writer puts output (kept apart: it may call flush())."""

    def __init__(self, owner: Decompressor) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        self._owner._take(data)
        return len(data)


class Decompressor:
    """Incremental gzip/deflate/zstd decoder with an optional bound on total output.

    Args:
        encoding: `gzip`, `x-gzip`, `deflate` or `zstd` (str or bytes).
        max_output: raise `BodyTooLarge` once more than this many bytes come out.

    Raises:
        BodyDecodeError: unknown encoding, corrupt data, or (in `flush`) a truncated body.
    """

    def __init__(self, encoding: str | bytes, max_output: int | None = None) -> None:
        if isinstance(encoding, bytes):
            encoding = encoding.decode("latin-1")
        kind = _DECODABLE.get(encoding.strip().lower())
        if kind is None:
            raise BodyDecodeError(f"unsupported content-encoding {encoding!r}")
        if kind == "zstd" and not _ZSTD:
            raise BodyDecodeError("zstd body but the zstandard package is not installed")
        self.encoding = kind
        self.max_output = max_output
        self.total_out = 0
        self._between_members = b""
        self._trailing_garbage = False
        self._out: list[bytes] = []
        self._zstd: zstandard.ZstdDecompressionWriter | None = None
        if kind == "zstd":
            # stream_writer hands output over in bounded pieces, so the size check runs
            # while decoding, not after a bomb has been fully expanded; zstandard's stub
            # asks for a whole IO[bytes] where it only calls write()
            sink = _Sink(self)
            self._zstd = zstandard.ZstdDecompressor().stream_writer(sink, write_size=_STEP)  # type: ignore[arg-type]
        # 32+15: gzip or zlib header, auto-detected
        self._zlib = zlib.decompressobj(47) if kind != "zstd" else None

    def _take(self, data: bytes) -> None:
        self._account(len(data))
        self._out.append(data)

    def _account(self, n: int) -> None:
        self.total_out += n
        if self.max_output is not None and self.total_out > self.max_output:
            raise BodyTooLarge(f"decompressed body exceeds {self.max_output} bytes")

    def feed(self, data: bytes) -> bytes:
        """Decode the next piece of the body; may return b"" while input is buffered."""
        if not data:
            return b""
        if self._zstd is not None:
            try:
                self._zstd.write(data)
            except BodyTooLarge:
                raise
            except zstandard.ZstdError as e:
                raise BodyDecodeError(f"corrupt zstd body: {e}")
            out, self._out = b"".join(self._out), []
            return out
        return self._feed_zlib(data)

    def _feed_zlib(self, data: bytes) -> bytes:
        parts: list[bytes] = []
        d = self._zlib
        assert d is not None
        while data and not self._trailing_garbage:
            if d.eof:
                # a gzip body may hold several members; anything else after one is ignored
                data = self._between_members + data
                if len(data) < len(GZIP_MAGIC):
                    self._between_members = data
                    break
                self._between_members = b""
                if self.encoding != "gzip" or not data.startswith(GZIP_MAGIC):
                    self._trailing_garbage = True
                    break
                d = self._zlib = zlib.decompressobj(47)
            try:
                chunk = d.decompress(data, _STEP)
            except zlib.error as e:
                raise BodyDecodeError(f"corrupt {self.encoding} body: {e}")
            if chunk:
                self._account(len(chunk))
                parts.append(chunk)
            data = d.unused_data if d.eof else d.unconsumed_tail
        return b"".join(parts)

    def flush(self) -> bytes:
        """End of body: return what is left.

        Raises:
            BodyDecodeError: a gzip/deflate body stopped before its end marker.
        """
        if self._zstd is not None:
            # the writer hands over all output inside write(); a cut-off frame cannot be
            # told apart here (the HTTP layer reports a short body)
            out, self._out = b"".join(self._out), []
            return out
        d = self._zlib
        assert d is not None
        if not d.eof:
            raise BodyDecodeError(f"truncated {self.encoding} body")
        return b""


def decode_body(raw: bytes, declared: str | None, limit: int | None) -> bytes:
    """Undo the body's compression (declared, else sniffed) within `limit` output bytes.

    A sniffed body that does not decode is returned unchanged (it was not compressed
    after all); a declared one raises `BodyDecodeError`.
    """
    encoding = declared or detect_encoding(raw)
    if encoding is None:
        return raw
    try:
        d = Decompressor(encoding, limit)
        return d.feed(raw) + d.flush()
    except BodyDecodeError:
        if declared:
            raise
        return raw


class _Collector(Protocol):
    def __init__(self, finished: defer.Deferred[bytes], limit: int) -> None:
        self._finished = finished
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._failed = False

    def dataReceived(self, data: bytes) -> None:
        if self._failed:
            return
        self._size += len(data)
        if self._size > self._limit:
            self.abandon()
            self._finished.errback(BodyTooLarge(f"upstream body exceeds {self._limit} bytes"))
            return
        self._parts.append(data)

    def abandon(self) -> None:
        """Ignore the rest of the body and drop the connection."""
        self._failed = True
        transport = body_transport(self)
        if transport is not None:
            transport.stopProducing()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._failed or self._finished.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self._finished.callback(b"".join(self._parts))
        else:
            self._finished.errback(reason)


def read_body(response: IResponse, limit: int, *, decode: bool = True) -> defer.Deferred[bytes]:
    """Collect a whole (small) response body, at most `limit` bytes.

    gzip/deflate/zstd bodies are decoded when `Content-Encoding` says so or the magic
    bytes show it; the decoded size is capped at `limit` too.

    Returns:
        Deferred[bytes]. Fails with `BodyTooLarge` (the connection is dropped),
        `BodyDecodeError`, or the transport's failure (`ResponseFailed` on a reset or
        a body shorter than its Content-Length). Cancelling it drops the connection.
    """
    collector: list[_Collector] = []

    def cancel(_: defer.Deferred[bytes]) -> None:
        if collector and collector[0].transport is not None:
            collector[0].abandon()

    finished: defer.Deferred[bytes] = defer.Deferred(cancel)
    proto = _Collector(finished, limit)
    collector.append(proto)
    response.deliverBody(proto)
    if not decode:
        return finished
    declared = declared_encoding(response.headers)
    return finished.addCallback(decode_body, declared, limit)
