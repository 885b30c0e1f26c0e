"""Drive a real CliproxySite over an in-memory transport: raw HTTP bytes in, parsed answer out.

Every layer of ours (channel limits, request, resources) runs for real; only the socket
is a StringTransport and time is a MemoryReactorClock.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport


class HalfCloseTransport(StringTransport):
    """StringTransport that also knows loseWriteConnection and abortConnection."""

    def __init__(self, peer: str = "127.0.0.1") -> None:
        super().__init__(peerAddress=IPv4Address("TCP", peer, 54321))
        self.write_closed = False
        self.aborted = False
        self.connected = True

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.connected = False
        self.disconnecting = True


@dataclass
class Answer:
    status: int
    reason: bytes
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self):
        import json

        return json.loads(self.body)


def parse_answers(raw: bytes) -> list[Answer]:
    answers = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        _, code, reason = (lines[0].split(b" ", 2) + [b""])[:3]
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.setdefault(k.strip().lower().decode(), []).append(v.strip().decode())
        body = b""
        if headers.get("transfer-encoding", [""])[0].lower() == "chunked":
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    rest = rest[2:]
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
        elif "content-length" in headers:
            n = int(headers["content-length"][0])
            body, rest = rest[:n], rest[n:]
        else:
            body, rest = rest, b""
        if headers.get("content-encoding", [""])[0] == "gzip":
            body = gzip.decompress(body)
        answers.append(Answer(int(code), reason, headers, body))
        raw = rest
    return answers


class Wire:
    """One client connection to `site`."""

    def __init__(self, site, peer: str = "127.0.0.1") -> None:
        self.site = site
        self.transport = HalfCloseTransport(peer)
        self.channel = site.buildProtocol(self.transport.getPeer())
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def answers(self) -> list[Answer]:
        return parse_answers(self.transport.value())

    def close(self) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.channel.connectionLost(Failure(ConnectionDone()))


def request_bytes(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8317"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None and not any(k.lower() == "content-length" for k in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def one(site, method: str, path: str, headers=None, body=None, peer="127.0.0.1") -> Answer:
    wire = Wire(site, peer)
    wire.send(request_bytes(method, path, headers, body))
    answers = wire.answers()
    assert len(answers) == 1, wire.transport.value()
    return answers[0]


def new_clock() -> MemoryReactorClock:
    return MemoryReactorClock()
