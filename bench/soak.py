#!/usr/bin/env python3
"""Soak: run cliproxy for a bounded time under mixed faulty traffic, report what leaked.

Loopback only. Starts a fake OpenAI-compatible upstream (asyncio, in this process) and the
real daemon (`twistd -n cliproxy`), then runs `--clients` loops of mixed traffic for
`--seconds` (default 600): non-stream and streaming chat, clients that drop mid-stream,
slow readers, and upstream streams reset mid-body. It prints the daemon's RSS, open fds
and open upstream connections after a warm-up and again after the traffic stops, plus
counts of every outcome; any outcome that is not explained by an injected fault counts as
an error. Exit status 1 if RSS grew more than 10 %, fds or connections leaked, or there
were unexplained errors.

    bench/soak --seconds 180
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-soak-client-0000"
MODEL = "soak-model"
TWISTD = ["-c", "import sys; from twisted.scripts.twistd import run; run()"]


# -- the fake upstream ------------------------------------------------------------------------


class Upstream:
    """OpenAI chat completions; a streamed answer is reset mid-body with `reset_rate`."""

    def __init__(self, reset_rate: float) -> None:
        self.reset_rate = reset_rate
        self.open = 0
        self.resets = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = json.loads(await reader.readexactly(length)) if length else {}
        if not body.get("stream"):
            out = json.dumps(_completion("soak answer " * 20)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n" % len(out) + out)
            await writer.drain()
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        reset = random.random() < self.reset_rate
        for i in range(30):
            if reset and i == 10:
                self.resets += 1
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                writer.transport.abort()
                return False
            frame = b"data: " + json.dumps(_chunk("word%d " % i)).encode() + b"\n\n"
            if i % 7 == 3:
                frame += b"data: \n\n"  # an empty frame: must never reach the client
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            await writer.drain()
            await asyncio.sleep(0.005)
        done = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        await writer.drain()
        return True


def _completion(text: str) -> dict:
    message = {"role": "assistant", "content": text}
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25},
    }


def _chunk(text: str) -> dict:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}


# -- clients -----------------------------------------------------------------------------------


async def one_request(port: int, kind: str, stats: collections.Counter) -> None:
    """One request of `kind`: plain, stream, drop (leave mid-stream) or slow (slow reader)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    body["stream"] = kind != "plain"
    raw = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "slow":
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(head.encode() + raw)
    data = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(1024 if kind == "slow" else 65536), 30)
            if not chunk:
                break
            data += chunk
            if kind == "drop" and data.count(b"data:") >= 3:
                stats["dropped by client"] += 1
                return
            if kind == "slow":
                await asyncio.sleep(0.01)
    finally:
        writer.close()
    classify(kind, data, stats)


def classify(kind: str, data: bytes, stats: collections.Counter) -> None:
    status = data[9:12]
    if status != b"200":
        stats[f"error: HTTP {status.decode(errors='replace')}"] += 1
        return
    if kind == "plain":
        stats["plain ok"] += 1
        return
    text = data.decode("utf-8", "replace")
    if "data: \n" in text or "data:\n" in text:
        stats["error: empty data frame reached the client"] += 1
    elif "data: [DONE]" in text:
        stats["stream ok"] += 1
    elif "upstream connection lost mid-stream" in text:
        stats["stream ended by injected upstream reset (terminal error event)"] += 1
    else:
        stats["error: stream ended without [DONE] or an error event"] += 1


async def client_loop(port: int, deadline: float, stats: collections.Counter) -> None:
    kinds = ["plain"] * 4 + ["stream"] * 4 + ["drop", "slow"]
    while time.monotonic() < deadline:
        kind = random.choice(kinds)
        try:
            await one_request(port, kind, stats)
        except (TimeoutError, OSError) as e:
            stats[f"error: {kind} {type(e).__name__}"] += 1


# -- the daemon and its /proc figures -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def figures(pid: int, upstream_port: int) -> dict[str, int]:
    """RSS (KiB), open fds, and established TCP connections from `pid` to the upstream."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    inodes = set()
    fds = os.listdir(f"/proc/{pid}/fd")
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    upstream = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        remote_port = int(cols[2].split(":")[1], 16)
        if cols[3] == "01" and remote_port == upstream_port and cols[9] in inodes:
            upstream += 1
    return {"rss_kib": rss, "open_fds": len(fds), "upstream_connections": upstream}


def start_daemon(port: int, upstream_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / "config.yaml"
    config.write_text(
        f'host: "127.0.0.1"\nport: {port}\napi-keys: ["{KEY}"]\nauth-dir: "{workdir}/auth"\n'
        "openai-compatibility:\n  - name: soak\n"
        f'    base-url: "http://127.0.0.1:{upstream_port}/v1"\n'
        '    api-key-entries: [{api-key: "sk-soak-upstream"}]\n'
        f'    models: [{{name: "{MODEL}", alias: "{MODEL}"}}]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIPROXY_LOCAL_MODEL": "1"}
    log = (workdir / "twistd.log").open("wb")
    cmd = [sys.executable, *TWISTD, "-n", "--pidfile=", "cliproxy", "--config", str(config)]
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit("cliproxy exited during start-up; see its log")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit("cliproxy did not start listening")


async def phase(port: int, seconds: float, clients: int, stats: collections.Counter) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(client_loop(port, deadline, stats) for _ in range(clients)))
    await asyncio.sleep(2.0)  # let cancelled upstream connections close


async def soak(args: argparse.Namespace) -> int:
    upstream = Upstream(args.reset_rate)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    upstream_port = server.sockets[0].getsockname()[1]
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cliproxy-soak-"))
    proc = start_daemon(port, upstream_port, workdir)
    try:
        await wait_ready(port, proc)
        warm: collections.Counter[str] = collections.Counter()
        await phase(port, min(30.0, args.seconds / 10), args.clients, warm)
        start = figures(proc.pid, upstream_port)
        stats: collections.Counter[str] = collections.Counter()
        began = time.monotonic()
        await phase(port, args.seconds, args.clients, stats)
        end = figures(proc.pid, upstream_port)
        took = time.monotonic() - began
    finally:
        proc.terminate()
        proc.wait(30)
        server.close()
    log_text = (workdir / "twistd.log").read_text(errors="replace")
    return report(args, start, end, stats, upstream, log_text, took)


def report(args, start, end, stats, upstream, log_text: str, took: float) -> int:
    errors = sum(n for k, n in stats.items() if k.startswith("error"))
    tracebacks = log_text.count("Traceback")
    growth = (end["rss_kib"] - start["rss_kib"]) / max(start["rss_kib"], 1)
    out = {
        "seconds": round(took),
        "clients": args.clients,
        "requests": sum(stats.values()),
        "start": start,
        "end": end,
        "rss_growth_percent": round(100 * growth, 1),
        "outcomes": dict(stats.most_common()),
        "upstream_resets_injected": upstream.resets,
        "unexplained_errors": errors,
        "tracebacks_in_log": tracebacks,
    }
    print(json.dumps(out, indent=2))
    leaked = end["open_fds"] > start["open_fds"] or end["upstream_connections"] > max(
        start["upstream_connections"], 0
    )
    return 1 if growth > 0.10 or leaked or errors or tracebacks else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="traffic time (600)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client loops (8)")
    parser.add_argument("--reset-rate", type=float, default=0.05, help="upstream resets (0.05)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 24 * 3600:
        parser.error("--seconds must be between 1 and 86400")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
