"""py-spy collapsed stacks -> where the busy samples went (bench/run --profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: where a busy sample goes: the first phase with a marker anywhere in its stack wins
PHASES = (
    (
        "new upstream connection (HostnameEndpoint, getaddrinfo thread)",
        (
            "HTTPConnectionPool._newConnection",
            "GAIResolver",
            "Thread._bootstrap",
        ),
    ),
    ("upstream socket close", ("_SocketCloser", "_closeSocket")),
    ("Content-Type parse via email.message (twisted.web)", ("_parseContentType",)),
    ("access log event", ("CliproxySite.log",)),
    (
        "stream relay (StreamReader, SSE, pass-through, Request.write)",
        ("StreamReader.dataReceived",),
    ),
    ("upstream request: treq/Agent build and send", ("UpstreamHTTP.request",)),
    ("upstream response parse (HTTP11ClientProtocol)", ("HTTP11ClientProtocol.dataReceived",)),
    ("routing (Router.handle)", ("Router.handle",)),
    ("endpoint render, guard, process", ("Request.process",)),
    ("request finish", ("Request.finish",)),
    ("server HTTP parse", ("HTTPChannel.dataReceived", "LineReceiver.dataReceived")),
    ("socket send", ("writeSomeData",)),
    ("socket recv / accept", ("Connection.doRead", "Port.doRead")),
    ("timers", ("runUntilCurrent",)),
)

#: leaf frames where the process waits rather than works (py-spy may still report them)
IDLE_LEAVES = ("EPollReactor.doPoll (twisted/internet/epollreactor.py:227)", "Condition.wait")


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> where the busy samples went.

    `self`: leaf frames (file:line); `cliproxy`: our frames by inclusive samples;
    `inclusive`: functions anywhere by inclusive samples. Idle samples (waiting in
    epoll or on a thread-pool queue) are counted apart.
    """
    self_line: dict[str, int] = {}
    phases: dict[str, int] = {}
    ours: dict[str, int] = {}
    incl_fn: dict[str, int] = {}
    total = idle = threads = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or any(m in frames[-1] for m in IDLE_LEAVES):
            idle += n
            continue
        total += n
        if frames[0].startswith("Thread._bootstrap"):
            threads += n
        self_line[frames[-1]] = self_line.get(frames[-1], 0) + n
        phase = next(
            (name for name, marks in PHASES if any(m in stack for m in marks)), "reactor, other"
        )
        phases[phase] = phases.get(phase, 0) + n
        seen = set()
        for f in frames:
            if "cliproxy/" in f and f not in seen:
                seen.add(f)
                ours[f] = ours.get(f, 0) + n
            fn = strip_line(f)
            if fn not in seen:
                seen.add(fn)
                incl_fn[fn] = incl_fn.get(fn, 0) + n

    def topn(d: dict[str, int], skip_outer: bool = False) -> list[list[Any]]:
        rows = sorted(d.items(), key=lambda kv: -kv[1])
        if skip_outer:  # the reactor's own frames hold every sample; say nothing
            rows = [r for r in rows if r[1] < 0.9 * total]
        return [[k, v, round(100 * v / total, 1)] for k, v in rows[:top]]

    return {
        "samples": total,
        "idle_samples": idle,
        "thread_pool_pct": round(100 * threads / total, 1) if total else 0.0,
        "phases": topn(phases),
        "self": topn(self_line),
        "cliproxy": topn(ours),
        "inclusive": topn(incl_fn, skip_outer=True),
    }


def strip_line(frame: str) -> str:
    """'fn (path/file.py:123)' -> 'fn (path/file.py)'."""
    if frame.endswith(")") and ":" in frame:
        head, _, _ = frame.rpartition(":")
        return head + ")"
    return frame
