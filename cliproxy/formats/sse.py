# -*- test-case-name: tests.formats.test_sse -*-
"""Incremental Server-Sent Events framing.

`SSEDecoder` takes bytes as they arrive, split anywhere (inside a line, inside a CRLF,
inside a UTF-8 sequence), and yields whole events. It follows the WHATWG event-stream
rules that matter for LLM APIs: `event:`, `data:` (joined with newlines), `id:`,
comment lines, CR, LF and CRLF line ends, and a leading BOM. Cost per feed is
proportional to the bytes fed, never to the stream so far. A CR that ends a feed waits for
the next byte (or `close`) to tell CR from CRLF, so each event, `raw` bytes included, is the
same however the stream was split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event. `data` is the raw bytes of the joined data lines."""

    data: bytes = b""
    event: str | None = None
    id: str | None = None
    #: the exact bytes this event arrived as, so a pass-through can relay them unchanged
    raw: bytes = field(default=b"", repr=False)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def encode(self) -> bytes:
        return encode_event(self.data, self.event, self.id)


def encode_event(data: bytes | str, event: str | None = None, id: str | None = None) -> bytes:
    """Serialise one event; multi-line data becomes several `data:` lines."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    parts = []
    if event is not None:
        parts.append(b"event: " + event.encode("utf-8") + b"\n")
    if id is not None:
        parts.append(b"id: " + id.encode("utf-8") + b"\n")
    if b"\n" in data or b"\r" in data:
        for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            parts.append(b"data: " + line + b"\n")
    else:
        parts.append(b"data: " + data + b"\n")
    parts.append(b"\n")
    return b"".join(parts)


def encode_comment(text: str = "keep-alive") -> bytes:
    return b": " + text.encode("utf-8") + b"\n\n"


class SSEDecoder:
    """Feed bytes, get `SSEEvent`s. Keeps only the unfinished line and event."""

    __slots__ = (
        "_buf",
        "_started",
        "_data",
        "_event",
        "_id",
        "_raw",
        "_has_field",
        "max_event_bytes",
    )

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buf = b""
        self._started = False
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._raw: list[bytes] = []
        self._has_field = False
        self.max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if not self._started:
            probe = self._buf + chunk
            if len(probe) < 3 and _BOM.startswith(probe):
                self._buf = probe
                return []
            self._started = True
            if probe.startswith(_BOM):
                probe = probe[3:]
            self._buf = b""
            chunk = probe
        buf = self._buf + chunk if self._buf else chunk
        out: list[SSEEvent] = []
        start = 0
        n = len(buf)
        # find, not `in`: bytes' `in` builds and drops a TypeError before it searches
        if not self._raw and buf.find(b"\r") < 0:
            start = self._whole_events(buf, out)
        while start < n:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n:
                    # CR or CRLF: the next byte decides, and the line end (so each event's
                    # raw bytes) must not depend on where the stream was split
                    break
                end = cr
                nxt = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            self._raw.append(buf[start:nxt])
            ev = self._line(buf[start:end])
            if ev is not None:
                out.append(ev)
            start = nxt
        self._buf = buf[start:]
        pending = len(self._buf) + (sum(len(d) for d in self._data) if self._data else 0)
        if pending > self.max_event_bytes:
            raise ValueError("SSE event larger than %d bytes" % self.max_event_bytes)
        return out

    def _whole_events(self, buf: bytes, out: list[SSEEvent]) -> int:
        """The events of `buf` that end in it, for the shape nearly every provider sends:
        LF line ends, `buf` starting where an event starts. One search per event instead
        of two per line. Returns where the rest (an unfinished event) starts."""
        start = 0
        n = len(buf)
        while start < n:
            if buf[start] == 10:  # a blank line with nothing pending dispatches nothing
                start += 1
                continue
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            for line in buf[start:end].split(b"\n"):
                # the usual `data: ` and `event: ` lines read here as _line reads them
                # (a call per line cost as much as the rest of the event's handling)
                if line[:6] == b"data: ":
                    self._data.append(line[6:])
                    self._has_field = True
                elif line[:7] == b"event: ":
                    self._event = line[7:].decode("utf-8", "replace")
                    self._has_field = True
                else:
                    self._line(line)
            if self._has_field:  # what _dispatch does, with the raw bytes in one piece
                out.append(
                    SSEEvent(b"\n".join(self._data), self._event, self._id, buf[start : end + 2])
                )
                self._data = []
                self._event = None
                self._id = None
                self._has_field = False
            start = end + 2
        return start

    def close(self) -> list[SSEEvent]:
        """The stream ended: an unterminated last event is still dispatched."""
        out: list[SSEEvent] = []
        if self._buf:
            self._raw.append(self._buf)
            line = self._buf[:-1] if self._buf.endswith(b"\r") else self._buf
            ev = self._line(line)
            self._buf = b""
            if ev is not None:
                out.append(ev)
        ev = self._dispatch()
        if ev is not None:
            out.append(ev)
        return out

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return None
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._has_field = True
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
            self._has_field = True
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
            self._has_field = True
        return None

    def _dispatch(self) -> SSEEvent | None:
        raw = b"".join(self._raw)
        self._raw = []
        if not self._has_field:
            return None
        ev = SSEEvent(b"\n".join(self._data), self._event, self._id, raw)
        self._data = []
        self._event = None
        self._id = None
        self._has_field = False
        return ev
