#!/usr/bin/env python3
"""Reactor stall: does a large translated request hold up other streams? (issue 14)

Loopback only. Starts a fake upstream (asyncio, in this process) and the real daemon
(`twistd -n cliproxy`). One client keeps a stream open whose upstream sends a chunk every
`--interval` seconds; meanwhile OpenAI Chat requests of `--size-mib` MiB made of many
short turns are sent for a Claude model, so cliproxy parses and translates each one
(Chat -> Claude): first one alone, then two at once. For each phase it reports the
longest gap between two chunks of the running stream (the stall: with no stall it stays
near `--interval`), how long the large requests took, and the daemon's resident memory
before and at its peak (`VmHWM`, reset per phase through `/proc/<pid>/clear_refs`).

`--mode before` runs the daemon with `limits.large-body-size` above any body, so the
work is done on the reactor thread as before issue 14; `--mode after` with the default
(256 KiB: the work goes to worker threads). `--max-body` adds one request of
`limits.max-body-size` (32 MiB) to measure the peak memory one request can take.

`--route amp` sends the large bodies to Amp's `/api/provider/anthropic/v1/messages`
instead: Claude Messages bodies for a model that `ampcode.model-mappings` maps to the
Claude model, with an unsigned thinking block in every assistant turn, so the Amp
fallback parses, sanitises and re-encodes each one before the `/v1/messages` endpoint
reads it.

    python3 bench/stall.py --mode both --max-body
    python3 bench/stall.py --mode after --route amp
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from soak import free_port, wait_ready  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-stall-client-0000"
TWISTD = ["-c", "import sys; from twisted.scripts.twistd import run; run()"]
MiB = 1024 * 1024
MAX_BODY = 32 * MiB


# -- the fake upstream ------------------------------------------------------------------------


class Upstream:
    """`POST /v1/chat/completions` (stream): a chunk every `interval` until the client goes.
    `POST /v1/messages` (Claude): the body is read whole, a short message comes back."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.claude_bodies: list[int] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            request_line, body = await read_request(reader)
            while b" /v1/messages" in request_line:  # keep-alive: answered one by one
                self.claude_bodies.append(len(body))
                answer = json.dumps(_claude_message()).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
                request_line, body = await read_request(reader)
            await self._tick(writer)  # the stream: until cliproxy hangs up
        writer.close()

    async def _tick(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        for n in itertools.count():
            data = b"data: " + json.dumps(_chunk(f"tick {n}")).encode() + b"\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            await asyncio.sleep(self.interval)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The request line and the body (Content-Length framed) of the next request."""
    request_line, *fields = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(b":") for f in fields)}
    return request_line, await reader.readexactly(int(headers.get(b"content-length") or 0))


def _claude_message() -> dict[str, Any]:
    return {
        "id": "msg_stall",
        "type": "message",
        "role": "assistant",
        "model": "claude-stall-1",
        "content": [{"type": "text", "text": "read it all"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 3},
    }


def _chunk(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stall",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "tick-model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


# -- the daemon -------------------------------------------------------------------------------


def start_daemon(
    python: str, port: int, upstream_port: int, workdir: Path, large_body_size: str
) -> subprocess.Popen[bytes]:  # the ampcode section only matters to `--route amp`
    config = workdir / "config.yaml"
    config.write_text(
        f'host: "127.0.0.1"\nport: {port}\napi-keys: ["{KEY}"]\nauth-dir: "{workdir}/auth"\n'
        "claude-api-key:\n  - api-key: sk-ant-stall\n"
        f'    base-url: "http://127.0.0.1:{upstream_port}"\n'
        "    models: [{name: claude-stall-1, alias: claude-stall}]\n"
        "openai-compatibility:\n  - name: tick\n"
        f'    base-url: "http://127.0.0.1:{upstream_port}/v1"\n'
        '    api-key-entries: [{api-key: "sk-tick"}]\n'
        "    models: [{name: tick-model, alias: tick-model}]\n"
        f'limits: {{large-body-size: "{large_body_size}"}}\n'
        "ampcode:\n  model-mappings: [{from: amp-stall, to: claude-stall}]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIPROXY_LOCAL_MODEL": "1"}
    log = (workdir / "twistd.log").open("wb")
    cmd = [python, *TWISTD, "-n", "--pidfile=", "cliproxy", "--config", str(config)]
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


# -- the clients ------------------------------------------------------------------------------


def post(path: str, body: bytes, stream: bool = False) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    if not stream:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode() + body


#: where the large bodies go, per `--route`
LARGE_PATHS = {"chat": "/v1/chat/completions", "amp": "/api/provider/anthropic/v1/messages"}


def large_body(size: int, route: str = "chat") -> bytes:
    """A request of about `size` bytes: short alternating turns, ending with the user.

    `chat`: an OpenAI Chat body for the Claude model. `amp`: a Claude Messages body for
    the model Amp's mapping sends to it; each assistant turn replays an unsigned thinking
    block (the Amp sanitiser drops it).
    """
    turn = 0
    parts: list[bytes] = []
    total = 0
    while total < size - 200 or turn % 2 == 0:
        role = "user" if turn % 2 == 0 else "assistant"
        content: Any = f"turn {turn}: a few short words"
        if route == "amp" and role == "assistant":
            content = [
                {"type": "thinking", "thinking": "hmm", "signature": ""},
                {"type": "text", "text": content},
            ]
        part = json.dumps({"role": role, "content": content}).encode()
        parts.append(part)
        total += len(part) + 1
        turn += 1
    if route == "amp":
        head = b'{"model":"amp-stall","max_tokens":64,"messages":['
    else:
        head = b'{"model":"claude-stall","messages":['
    return head + b",".join(parts) + b"]}"


class Stream:
    """The running stream: when each read carrying `data:` arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps(
            {"model": "tick-model", "stream": True, "messages": [{"role": "user", "content": "go"}]}
        ).encode()
        writer.write(post("/v1/chat/completions", body, stream=True))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if b"data: " in data:
                    self.arrivals.append(time.monotonic())
        finally:
            writer.close()

    def longest_gap(self, start: float, end: float) -> float:
        times = [t for t in self.arrivals if start <= t <= end]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


async def one_large(port: int, body: bytes, path: str) -> tuple[float, int]:
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post(path, body))
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return time.monotonic() - began, status


async def phase(
    port: int, pid: int, stream: Stream, body: bytes, at_once: int, path: str
) -> dict[str, Any]:
    await asyncio.sleep(0.5)
    reset_peak(pid)
    before = memory_kib(pid)["VmRSS"]
    start = time.monotonic()
    results = await asyncio.gather(*(one_large(port, body, path) for _ in range(at_once)))
    await asyncio.sleep(0.3)
    end = time.monotonic()
    peak = memory_kib(pid)["VmHWM"]
    return {
        "requests": at_once,
        "body_mib": round(len(body) / MiB, 2),
        "statuses": [s for _, s in results],
        "longest_request_s": round(max(t for t, _ in results), 2),
        "longest_stream_gap_ms": round(stream.longest_gap(start, end) * 1000),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
    }


async def run_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    upstream = Upstream(args.interval)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    upstream_port = server.sockets[0].getsockname()[1]
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cliproxy-stall-"))
    (workdir / "auth").mkdir()
    threshold = "1GiB" if mode == "before" else "256KiB"
    proc = start_daemon(args.python, port, upstream_port, workdir, threshold)
    stream = Stream()
    out: dict[str, Any] = {"mode": mode, "large_body_size": threshold}
    try:
        await wait_ready(port, proc)
        stream.task = asyncio.create_task(stream.run(port))
        await asyncio.sleep(1.0)
        quiet = time.monotonic()
        await asyncio.sleep(1.0)
        out["idle_gap_ms"] = round(stream.longest_gap(quiet, time.monotonic()) * 1000)
        body = large_body(int(args.size_mib * MiB), args.route)
        path = LARGE_PATHS[args.route]
        out["one"] = await phase(port, proc.pid, stream, body, 1, path)
        out["two"] = await phase(port, proc.pid, stream, body, 2, path)
        if args.max_body:
            biggest = large_body(MAX_BODY - 4096, args.route)
            out["max"] = await phase(port, proc.pid, stream, biggest, 1, path)
        out["claude_bodies_mib"] = [round(n / MiB, 2) for n in upstream.claude_bodies]
    finally:
        if stream.task is not None:
            stream.task.cancel()
            await asyncio.gather(stream.task, return_exceptions=True)
        began = time.monotonic()
        proc.terminate()  # SIGTERM: the service tree stops, the worker threads with it
        while proc.poll() is None and time.monotonic() - began < 60:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            out["exit"] = "killed: no exit within 60 s of SIGTERM"
        else:
            out["exit"] = f"status {proc.returncode} {time.monotonic() - began:.1f} s after SIGTERM"
        server.close()
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"stream chunk every {args.interval * 1000:.0f} ms; large bodies {args.size_mib} MiB "
        + (
            "of short Claude turns on Amp's /api/provider route, mapped to a Claude model"
            if args.route == "amp"
            else "of short Chat turns, translated for Claude"
        ),
        "",
        "| mode | phase | body MiB | statuses | slowest large request s "
        "| longest stream gap ms | RSS before MB | RSS peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        lines.append(f"| {res['mode']} | idle | | | | {res['idle_gap_ms']} | | |")
        for name in ("one", "two", "max"):
            p = res.get(name)
            if p is None:
                continue
            label = {"one": "one at a time", "two": "two at once", "max": "one max-size"}[name]
            lines.append(
                f"| {res['mode']} | {label} | {p['body_mib']} | {p['statuses']} "
                f"| {p['longest_request_s']} | {p['longest_stream_gap_ms']} "
                f"| {p['rss_before_mb']} | {p['rss_peak_mb']} |"
            )
    lines += ["", *(f"{res['mode']}: daemon exit {res.get('exit')}" for res in results)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for cliproxy")
    parser.add_argument("--mode", choices=("before", "after", "both"), default="both")
    parser.add_argument("--interval", type=float, default=0.02, help="stream chunk interval, s")
    parser.add_argument("--size-mib", type=float, default=5.0, help="size of each large body")
    parser.add_argument("--max-body", action="store_true", help="also one 32 MiB body")
    parser.add_argument(
        "--route", choices=tuple(LARGE_PATHS), default="chat", help="where the large bodies go"
    )
    parser.add_argument("--json", action="store_true", help="print raw results as JSON too")
    args = parser.parse_args()
    modes = ("before", "after") if args.mode == "both" else (args.mode,)
    results = [asyncio.run(run_mode(args, mode)) for mode in modes]
    print(report(results, args))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
