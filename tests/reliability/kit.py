"""Raw HTTP over a real loopback socket, for answers treq would tidy up (reason phrases,
HTML pages, half-sent bodies, hangs). The blocking socket runs in a thread; the reactor
keeps serving the proxy and the fakes meanwhile."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import threads

from tests.serving_kit import CLIENT_KEY


@dataclass
class RawAnswer:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    timed_out: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def request_bytes(
    method: str,
    path: str,
    body: bytes | dict[str, Any] = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    head = {
        "host": "127.0.0.1",
        "authorization": f"Bearer {CLIENT_KEY}",
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
    }
    head.update({k.lower(): v for k, v in (headers or {}).items()})  # "" drops a header
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items() if v)
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


def exchange_blocking(url: str, data: bytes | list[bytes], timeout: float = 5.0) -> bytes:
    """Send `data` (or pieces of it), read until close or `timeout` of silence."""
    sock = socket.create_connection(("127.0.0.1", _port(url)), timeout=timeout)
    out = b""
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            sock.sendall(piece)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        out += b"\0TIMEOUT"
    except ConnectionResetError:
        out += b"\0RESET"
    finally:
        sock.close()
    return out


def parse(raw: bytes) -> RawAnswer:
    timed_out = raw.endswith(b"\0TIMEOUT")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = (
        (lines[0].split(" ", 2) + ["", ""])[:3] if lines[0].startswith("HTTP/") else ["", "0", ""]
    )
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return RawAnswer(int(parts[1] or 0), parts[2], headers, body.split(b"\0TIMEOUT")[0], timed_out)


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return out + body
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


async def exchange(url: str, data: bytes | list[bytes], timeout: float = 5.0) -> RawAnswer:
    raw = await threads.deferToThread(exchange_blocking, url, data, timeout)
    return parse(raw)


async def call(url: str, method: str, path: str, body: Any = b"", **headers: str) -> RawAnswer:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return await exchange(url, request_bytes(method, path, body, hdrs))


def sse_data(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    out = []
    for frame in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in frame.split("\n") if line.startswith("data:")]
        if data:
            out.append("\n".join(data))
    return out


def monotonic() -> float:
    return time.monotonic()
