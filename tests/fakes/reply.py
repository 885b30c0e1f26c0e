"""What a fake upstream sends back, and the exact byte plan that realises it.

A `Reply` describes one HTTP response: status, headers, and a body given as JSON, raw
bytes, SSE events or exact byte chunks, plus the misbehaviours tests need (delays,
compression with or without a `Content-Encoding` header, chunked or `Content-Length`
framing, a TCP reset or a clean close mid-body, silence). `plan_reply` turns it into a
`ReplyPlan`: the header list and a list of `Piece(delay, data)` to write in order. It is
pure, so the framing rules can be read and tested without a socket.
"""

from __future__ import annotations

import json as _json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from tests.fakes.records import RecordedRequest

try:  # zstd is optional: Debian may lack python3-zstandard
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

#: whether `Reply(zstd=True)` can be used here
HAVE_ZSTD = _zstd is not None


@dataclass
class Event:
    """One SSE event. `data` may be a dict/list (sent as JSON), a str, or bytes.

    Args:
        data: the payload; JSON-encoded compactly when it is a dict or list.
        event: the `event:` field, if any.
        id: the `id:` field, if any.
        delay: seconds to wait before this event (overrides `Reply.chunk_delay`).
        retry: the `retry:` field, if any.
    """

    data: Any = ""
    event: str | None = None
    id: str | None = None
    delay: float | None = None
    retry: int | None = None

    def encode(self, newline: str = "\n") -> bytes:
        """Serialise with the given line ending (`"\\n"` or `"\\r\\n"`)."""
        nl = newline.encode("ascii")
        data = self.data
        if isinstance(data, (dict, list)):
            data = _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if isinstance(data, str):
            data = data.encode("utf-8")
        out = []
        if self.event is not None:
            out.append(b"event: " + self.event.encode("utf-8") + nl)
        if self.id is not None:
            out.append(b"id: " + self.id.encode("utf-8") + nl)
        if self.retry is not None:
            out.append(b"retry: %d" % self.retry + nl)
        for line in data.split(b"\n"):
            out.append(b"data: " + line + nl)
        out.append(nl)
        return b"".join(out)

    def json(self) -> Any:
        """The payload as a Python value (parses str/bytes JSON; `[DONE]` stays a str)."""
        if isinstance(self.data, (dict, list)):
            return self.data
        text = self.data.decode("utf-8") if isinstance(self.data, bytes) else self.data
        try:
            return _json.loads(text)
        except ValueError:
            return text


@dataclass(frozen=True)
class Pause:
    """A silence of `seconds` before the next event or chunk."""

    seconds: float


#: items accepted in `Reply.sse`: Event, dict/list (data-only JSON event), str (data-only
#: event), bytes (written verbatim, e.g. a comment or a half event), Pause
SSEItem = Union[Event, dict, list, str, bytes, Pause]
#: items accepted in `Reply.chunks`: bytes, (bytes, delay_before), Pause
ChunkItem = Union[bytes, tuple, Pause]


@dataclass
class Reply:
    """One scripted HTTP response. All fields are optional; `Reply()` is `200` with no body.

    Body (first one set wins: chunks, sse, json, body):
        json: a value sent as `application/json`.
        body: raw bytes (or str, sent as UTF-8 `text/plain`).
        sse: a list of `SSEItem`; sent as `text/event-stream`, chunked, one write per event.
        chunks: exact byte chunks, one write each (a `(bytes, delay)` tuple or a `Pause`
            sets the delay before a chunk).

    Timing (seconds, on the fake's clock; 0 means "same reactor turn"):
        delay: before the status line and headers.
        chunk_delay: before every body write after the first (unless the item sets its own).

    Framing:
        chunked: `True` for Transfer-Encoding chunked, `False` for Content-Length of the
            whole planned body; default chunked for sse/chunks, Content-Length otherwise.
        split_at / split_every: re-split the final wire body (after compression) at these
            absolute byte offsets / every n bytes; each piece is one write, `chunk_delay` apart.
        sse_newline: line ending for SSE events (`"\\n"` or `"\\r\\n"`).

    Encoding:
        gzip / zstd: compress the body (streamed, flushed at each write so every write
            is decodable on its own); `content_encoding=False` omits the
            `Content-Encoding` header (ampcode.com does this).

    Volume:
        repeat / repeat_count: after the other body writes, write `repeat` `repeat_count`
            times as fast as the connection takes it, pausing whenever Twisted applies
            backpressure (each pause counts in `RecordedRequest.pauses`). Not compressed,
            split or truncated; counted in Content-Length.

    Failure:
        reset_after: after this many body bytes, reset the TCP connection (RST).
        close_after: after this many body bytes, close the connection cleanly (FIN).
        hang: never finish. With no body at all nothing is sent, not even headers;
            otherwise the planned body is sent and then the fake stays silent.

    Headers:
        headers: extra headers (`{name: value or [values]}`), applied last.
        content_type: overrides the content type chosen from the body kind.
        retry_after: adds `Retry-After` (seconds as int/float, or a preformatted str).
    """

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    sse: list[SSEItem] | None = None
    chunks: list[ChunkItem] | None = None
    headers: dict[str, str | list[str]] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunked: bool | None = None
    split_at: list[int] | None = None
    split_every: int | None = None
    sse_newline: str = "\n"
    gzip: bool = False
    zstd: bool = False
    content_encoding: bool = True
    reset_after: int | None = None
    close_after: int | None = None
    hang: bool = False
    retry_after: int | float | str | None = None
    repeat: bytes | None = None
    repeat_count: int = 0

    @property
    def is_stream(self) -> bool:
        return self.sse is not None or self.chunks is not None or self.repeat is not None


#: a scripted entry: a fixed Reply, or a function of the recorded request returning one
Responder = Callable[["RecordedRequest"], Reply]
ReplySource = Union[Reply, Responder]


@dataclass(frozen=True)
class Piece:
    """One write: wait `delay` seconds, then write `data`."""

    delay: float
    data: bytes


@dataclass
class ReplyPlan:
    """The wire plan for a `Reply`.

    Attributes:
        status: HTTP status.
        headers: `(name, value)` pairs, in order.
        pieces: body writes in order (already compressed, split and truncated).
        commit_headers_first: send the headers as soon as the reply starts, before the
            first piece (streams), instead of together with it.
        after: what happens after the last piece: "finish", "reset", "close" or "hang".
        delay: seconds before the status line.
        repeat / repeat_count: bulk data written after the pieces, under backpressure.
    """

    status: int
    headers: list[tuple[str, str]]
    pieces: list[Piece]
    commit_headers_first: bool
    after: str
    delay: float = 0.0
    repeat: bytes = b""
    repeat_count: int = 0

    @property
    def body(self) -> bytes:
        return b"".join(p.data for p in self.pieces)


def sse_bytes(events: Iterable[SSEItem], newline: str = "\n") -> bytes:
    """Serialise SSE items to one byte string (pauses ignored)."""
    return b"".join(_encode_sse_item(e, newline) for e in events if not isinstance(e, Pause))


def _encode_sse_item(item: SSEItem, newline: str) -> bytes:
    if isinstance(item, Event):
        return item.encode(newline)
    if isinstance(item, bytes):
        return item
    return Event(item).encode(newline)


def _logical_pieces(reply: Reply) -> tuple[list[Piece], str | None]:
    """The uncompressed writes and the default content type for the body kind."""
    if reply.chunks is not None:
        out, pending = [], None
        for i, item in enumerate(reply.chunks):
            if isinstance(item, Pause):
                pending = (pending or 0.0) + item.seconds
                continue
            if isinstance(item, tuple):
                data, delay = item
            else:
                data, delay = item, None
            if delay is None:
                delay = pending if pending is not None else (reply.chunk_delay if i else 0.0)
            pending = None
            out.append(Piece(float(delay), bytes(data)))
        return out, "application/octet-stream"
    if reply.sse is not None:
        out, pending = [], None
        for item in reply.sse:
            if isinstance(item, Pause):
                pending = (pending or 0.0) + item.seconds
                continue
            own = item.delay if isinstance(item, Event) else None
            if own is not None:
                delay = own
            elif pending is not None:
                delay = pending
            else:
                delay = reply.chunk_delay if out else 0.0
            pending = None
            out.append(Piece(float(delay), _encode_sse_item(item, reply.sse_newline)))
        return out, "text/event-stream"
    if reply.json is not None:
        data = _json.dumps(reply.json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return [Piece(0.0, data)], "application/json"
    if reply.body is not None:
        if isinstance(reply.body, str):
            return [Piece(0.0, reply.body.encode("utf-8"))], "text/plain; charset=utf-8"
        return [Piece(0.0, reply.body)], "application/octet-stream"
    return [], None


def _compress(pieces: list[Piece], reply: Reply, final: bool) -> list[Piece]:
    """Compress as one stream, flushed after each piece so each write decodes alone."""
    if reply.gzip:
        comp = zlib.compressobj(wbits=31)
        out = [
            Piece(p.delay, comp.compress(p.data) + comp.flush(zlib.Z_SYNC_FLUSH)) for p in pieces
        ]
        tail = comp.flush(zlib.Z_FINISH)
    else:
        if _zstd is None:
            raise RuntimeError("Reply(zstd=True) needs the zstandard module")
        comp = _zstd.ZstdCompressor().compressobj()
        out = [
            Piece(p.delay, comp.compress(p.data) + comp.flush(_zstd.COMPRESSOBJ_FLUSH_BLOCK))
            for p in pieces
        ]
        tail = comp.flush(_zstd.COMPRESSOBJ_FLUSH_FINISH)
    if final:
        if out:
            out[-1] = Piece(out[-1].delay, out[-1].data + tail)
        else:
            out = [Piece(0.0, tail)]
    return out


def _resplit(pieces: list[Piece], reply: Reply) -> list[Piece]:
    body = b"".join(p.data for p in pieces)
    first_delay = pieces[0].delay if pieces else 0.0
    if reply.split_every:
        cuts = list(range(reply.split_every, len(body), reply.split_every))
    else:
        cuts = sorted(c for c in set(reply.split_at or ()) if 0 < c < len(body))
    out, start = [], 0
    for cut in [*cuts, len(body)]:
        out.append(Piece(first_delay if not out else reply.chunk_delay, body[start:cut]))
        start = cut
    return [p for p in out if p.data]


def _truncate(pieces: list[Piece], limit: int) -> list[Piece]:
    out, sent = [], 0
    for p in pieces:
        if sent >= limit:
            break
        take = p.data[: limit - sent]
        out.append(Piece(p.delay, take))
        sent += len(take)
    return out


def plan_reply(reply: Reply) -> ReplyPlan:
    """Turn a `Reply` into the exact headers and writes a fake will perform."""
    pieces, default_type = _logical_pieces(reply)
    if reply.gzip or reply.zstd:
        # a hanging stream never sends the compressor's trailer, like a real stalled server
        pieces = _compress(pieces, reply, final=not reply.hang)
    if reply.split_at or reply.split_every:
        pieces = _resplit(pieces, reply)
    repeat = reply.repeat or b""
    declared = sum(len(p.data) for p in pieces) + len(repeat) * reply.repeat_count

    headers: list[tuple[str, str]] = []
    ctype = reply.content_type or default_type
    if ctype:
        headers.append(("Content-Type", ctype))
    if reply.sse is not None:
        headers.append(("Cache-Control", "no-cache"))
    if reply.content_encoding and (reply.gzip or reply.zstd):
        headers.append(("Content-Encoding", "gzip" if reply.gzip else "zstd"))
    if reply.retry_after is not None:
        value = reply.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        headers.append(("Retry-After", str(value)))
    chunked = reply.chunked if reply.chunked is not None else reply.is_stream
    user_names = {n.lower() for n in reply.headers}
    if not chunked and "content-length" not in user_names:
        headers.append(("Content-Length", str(declared)))
    for name, value in reply.headers.items():
        headers = [(n, v) for n, v in headers if n.lower() != name.lower()]
        for v in value if isinstance(value, list) else [value]:
            headers.append((name, str(v)))

    after = "finish"
    cut = None
    if reply.reset_after is not None:
        after, cut = "reset", reply.reset_after
    elif reply.close_after is not None:
        after, cut = "close", reply.close_after
    elif reply.hang:
        after = "hang"
    if cut is not None:
        pieces = _truncate(pieces, cut)
    # streams commit their headers at once, and so does a reply with no body
    commit_first = reply.is_stream or not pieces
    if reply.hang and not reply.is_stream and not pieces:
        commit_first = False  # hang with no body at all: not even a status line
    return ReplyPlan(
        reply.status,
        headers,
        pieces,
        commit_first,
        after,
        reply.delay,
        repeat,
        reply.repeat_count if repeat else 0,
    )
