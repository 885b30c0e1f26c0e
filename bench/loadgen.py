#!/usr/bin/env python3
"""Streaming load generator: N keep-alive connections, each running M SSE requests in turn.

Standard library only (plain asyncio, one process). For every stream it records the
time to the first SSE ``data:`` bytes of the body (TTFB) and the time to the end of the
chunked body (total), counts the events and checks for ``[DONE]``. It prints one JSON
object on stdout. Its own CPU time is in the output so a run can show the client was
not the bottleneck.

    python3 bench/loadgen.py --port 8080 --concurrency 256 --per-conn 4 --key k --body-file b.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time

perf = time.perf_counter


class StreamConn(asyncio.Protocol):
    """One HTTP/1.1 connection; parses status, headers and a chunked or sized body."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._state == "body" and self._length is None and not self._chunked:
                self._finish(perf())  # body delimited by close
            else:
                self._waiter.set_exception(ConnectionError(f"connection lost ({exc})"))

    def data_received(self, data: bytes) -> None:
        now = perf()
        buf = self._buf
        buf += data
        if self._state == "head":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            self.status = int(head[9:12])
            self.t_head = now
            self._chunked = b"transfer-encoding: chunked" in head
            self._length = None
            self._keep = b"connection: close" not in head
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    self._length = int(line[15:])
            self._state = "body"
        if self._chunked:
            self._read_chunks(now)
        elif self._length is not None:
            if buf:
                self._payload(bytes(buf), now)
                buf.clear()
            if self._got >= self._length:
                self._finish(now)
        elif buf:
            self._payload(bytes(buf), now)
            buf.clear()

    # -- parsing ------------------------------------------------------------------------

    def _read_chunks(self, now: float) -> None:
        buf = self._buf
        while True:
            if self._need < 0:  # expecting a size line (or the final CRLF)
                nl = buf.find(b"\r\n")
                if nl < 0:
                    return
                if self._last:
                    del buf[: nl + 2]
                    if nl == 0:  # empty line after the 0 chunk (no trailers)
                        self._finish(now)
                        return
                    continue
                size = int(bytes(buf[:nl]).split(b";")[0], 16)
                del buf[: nl + 2]
                if size == 0:
                    self._last = True
                    continue
                self._need = size
            if len(buf) < self._need + 2:
                return
            self._payload(bytes(buf[: self._need]), now)
            del buf[: self._need + 2]
            self._need = -1

    def _payload(self, chunk: bytes, now: float) -> None:
        self._got += len(chunk)
        self._parts.append(chunk)
        if self.t_first is None and (b"data:" in chunk or b"data:" in b"".join(self._parts)):
            self.t_first = now

    def _finish(self, now: float) -> None:
        self.t_end = now
        self._state = "done"
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(b"".join(self._parts))

    # -- API ----------------------------------------------------------------------------

    def send(self, raw: bytes) -> asyncio.Future:
        """Write one request; the future gets the whole body when the response ends."""
        self._buf = bytearray()
        self._state = "head"
        self._need = -1
        self._last = False
        self._chunked = False
        self._length = None
        self._keep = True
        self._got = 0
        self._parts: list[bytes] = []
        self.status = 0
        self.t_head = 0.0
        self.t_first: float | None = None
        self.t_end = 0.0
        self._waiter = asyncio.get_running_loop().create_future()
        self.t0 = perf()
        assert self.transport is not None
        self.transport.write(raw)
        return self._waiter


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an unsorted list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(pct(values, 50) * 1000, 2),
        "p90": round(pct(values, 90) * 1000, 2),
        "p99": round(pct(values, 99) * 1000, 2),
        "max": round(max(values) * 1000, 2),
        "mean": round(sum(values) / len(values) * 1000, 2),
    }


async def user(
    host: str, port: int, raw: bytes, count: int, out: dict, timeout: float, delay: float
) -> None:
    """One virtual client: `count` streams in turn on one keep-alive connection."""
    loop = asyncio.get_running_loop()
    if delay > 0:
        await asyncio.sleep(delay)
    conn: StreamConn | None = None
    for _ in range(count):
        try:
            if conn is None or conn.closed or not conn._keep:
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                _, conn = await loop.create_connection(StreamConn, host, port)
            body = await asyncio.wait_for(conn.send(raw), timeout)
        except Exception as e:  # noqa: BLE001 - every failure is counted, not raised
            out["errors"] += 1
            out.setdefault("first_error", repr(e))
            conn = None
            continue
        if conn.status != 200 or conn.t_first is None:
            out["errors"] += 1
            out.setdefault("first_error", f"status {conn.status}: {body[:300]!r}")
            continue
        out["head"].append(conn.t_head - conn.t0)
        out["ttfb"].append(conn.t_first - conn.t0)
        out["total"].append(conn.t_end - conn.t0)
        out["events"].append(body.count(b"data:"))
        out["done"] += body.count(b"data: [DONE]")
        out["bytes"] += len(body)
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def main_async(args: argparse.Namespace) -> dict:
    with open(args.body_file, "rb") as f:
        body = f.read()
    raw = (
        f"POST {args.path} HTTP/1.1\r\n"
        f"Host: {args.host}:{args.port}\r\n"
        f"Authorization: Bearer {args.key}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict = {
        "head": [],
        "ttfb": [],
        "total": [],
        "events": [],
        "errors": 0,
        "done": 0,
        "bytes": 0,
    }
    n = args.concurrency
    cpu0, t0 = time.process_time(), perf()
    await asyncio.gather(
        *(
            user(args.host, args.port, raw, args.per_conn, out, args.timeout, args.ramp * i / n)
            for i in range(n)
        )
    )
    wall = perf() - t0
    cpu = time.process_time() - cpu0
    n = len(out["total"])
    return {
        "concurrency": args.concurrency,
        "streams": n,
        "errors": out["errors"],
        "first_error": out.get("first_error"),
        "wall_s": round(wall, 3),
        "streams_per_s": round(n / wall, 1) if wall else 0.0,
        "headers_ms": summary_ms(out["head"]),
        "ttfb_ms": summary_ms(out["ttfb"]),
        "total_ms": summary_ms(out["total"]),
        "events_per_stream": [min(out["events"]), max(out["events"])] if n else [],
        "streams_with_done": out["done"],
        "bytes_per_stream": round(out["bytes"] / n) if n else 0,
        "loadgen_cpu_pct": round(100 * cpu / wall, 1) if wall else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/v1/chat/completions")
    p.add_argument("--key", default="")
    p.add_argument("--body-file", required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--per-conn", type=int, default=4, help="streams per connection, in turn")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per stream")
    p.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        help="seconds over which the connections start (0: all at once)",
    )
    args = p.parse_args(argv)
    result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
