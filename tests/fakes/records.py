"""What a fake upstream saw: one `RecordedRequest` per HTTP request received."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import defer

try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover
    _zstd = None


def decode_body(raw: bytes, encoding: str | None) -> bytes:
    """Undo a request `Content-Encoding` (Amp sends large bodies gzip-compressed)."""
    enc = (encoding or "").strip().lower()
    if not raw or enc in ("", "identity"):
        return raw
    if enc == "gzip":
        return gzip.decompress(raw)
    if enc == "deflate":
        return zlib.decompress(raw)
    if enc == "zstd" and _zstd is not None:
        return _zstd.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake received it.

    Attributes:
        method: e.g. "POST".
        path: the percent-decoded path, without the query.
        uri: the raw request target as sent (path and query).
        query: query parameters, each name to all its values, in order.
        headers: lower-cased header name to all its values.
        raw_body: the body bytes exactly as received.
        body: the body with any request Content-Encoding undone.
        json: the parsed body, or None when it is empty or not JSON.
        key: the credential the fake found (API key or bearer token), or None.
        route: a label of the route that answered ("scripted", "default", "builtin:<name>",
            "auth", "not-found").
        received_at: clock time when the full request had arrived.
        peer_port: the client's TCP port (equal ports mean a reused connection).
        version: the HTTP version line, e.g. "HTTP/1.1".
        status: the status the fake answered with (None while nothing was sent).
        bytes_sent: body bytes written so far (before chunk framing).
        pauses: how often backpressure paused a `Reply(repeat=...)` body.
        finished: the fake completed the response normally.
        disconnected: the connection went away before the fake finished (client left,
            or the fake reset or closed it on purpose; see `outcome`).
        disconnected_at: clock time of that, or None.
        outcome: None while in flight; then "finished", "client-gone", "reset", "closed"
            or "stopped" (the fake was stopped with the request still open).
        upgraded: the request was switched to a raw byte tunnel (WebSocket upgrade).
        tunnel_bytes: bytes received on the tunnel after the upgrade.
    """

    method: str
    path: str
    uri: bytes
    query: dict[str, list[str]]
    headers: dict[str, list[str]]
    raw_body: bytes
    body: bytes
    json: Any
    key: str | None = None
    route: str = ""
    received_at: float = 0.0
    peer_port: int | None = None
    version: str = ""
    status: int | None = None
    bytes_sent: int = 0
    pauses: int = 0
    finished: bool = False
    disconnected: bool = False
    disconnected_at: float | None = None
    outcome: str | None = None
    upgraded: bool = False
    tunnel_bytes: bytes = b""
    _done: defer.Deferred = field(default_factory=defer.Deferred, repr=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (case-insensitive), or `default`."""
        values = self.headers.get(name.lower())
        return values[0] if values else default

    def header_all(self, name: str) -> list[str]:
        return list(self.headers.get(name.lower(), []))

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, or `default`."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as `application/x-www-form-urlencoded` (first value per name)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    @property
    def params(self) -> dict[str, Any]:
        """Body parameters whether sent as JSON object or as a form (OAuth endpoints take both)."""
        if isinstance(self.json, dict):
            return self.json
        return self.form

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def _settle(self, outcome: str, when: float) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        if outcome == "finished":
            self.finished = True
        else:
            self.disconnected = True
            self.disconnected_at = when
        self._done.callback(outcome)

    def when_done(self, timeout: float | None = None, clock=None) -> defer.Deferred:
        """A Deferred firing with `outcome` once the exchange is over.

        With `timeout` (seconds on `clock`, default the global reactor) it fails with
        `defer.TimeoutError` instead of waiting forever.
        """
        d = defer.Deferred()
        if self.outcome is not None:
            d.callback(self.outcome)
        else:
            self._done.addBoth(lambda r: (d.called or d.callback(r), r)[1])
        if timeout is not None:
            if clock is None:
                from twisted.internet import reactor as clock
            d.addTimeout(timeout, clock)
        return d


def parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def parse_query(uri: bytes) -> dict[str, list[str]]:
    _, _, qs = uri.partition(b"?")
    return parse_qs(qs.decode("utf-8", "replace"), keep_blank_values=True)
