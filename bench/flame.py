"""Flame graphs of the floor and cliproxy under the same load (`bench/run --profile`).

py-spy samples a server during one extra leg (after the measured ones, so they stay
clean): two samplers attach at once, one writing the SVG flame graph (`--format
flamegraph`), one the raw collapsed stacks this module reads. The text rendering puts the
floor and cliproxy side by side in CPU µs per request (or per stream): every busy sample
goes to the package of its innermost frame that is not the standard library (so a
`json.loads` called by cliproxy is cliproxy's, a socket send called by Twisted is
Twisted's), and the leg's CPU per request from /proc is split by those shares.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (group, path prefixes of py-spy's short file names); first match wins, else stdlib
OWNERS = (
    ("cliproxy", ("cliproxy/",)),
    ("twisted.web (HTTP server, client, proxy)", ("twisted/web/",)),
    ("twisted.internet (reactor, TCP, Deferred)", ("twisted/internet/", "twisted/protocols/")),
    ("twisted.logger (log events, observers)", ("twisted/logger/",)),
    ("twisted.python (call context, failures, other)", ("twisted/",)),
    ("treq / hyperlink / idna", ("treq/", "hyperlink/", "idna/")),
    ("prometheus_client", ("prometheus_client/",)),
    ("zope / attrs / other libraries", ("zope/", "attr/", "incremental/", "yaml/", "constantly/")),
)
STDLIB = "standard library only (no library frame on the stack)"
#: leaf frames where a process waits rather than works (py-spy may still report them)
IDLE_LEAVES = ("EPollReactor.doPoll", "Condition.wait", "epoll", "select (")


def frame_file(frame: str) -> str:
    """'fn (twisted/web/http.py:123)' -> 'twisted/web/http.py'."""
    if frame.endswith(")") and "(" in frame:
        return frame[frame.rindex("(") + 1 : -1].rsplit(":", 1)[0]
    return ""


def owner(frame: str) -> str | None:
    path = frame_file(frame)
    for group, prefixes in OWNERS:
        if any(path.startswith(p) or f"/{p}" in path for p in prefixes):
            return group
    return None


def strip_line(frame: str) -> str:
    """'fn (path/file.py:123)' -> 'fn (path/file.py)'."""
    if frame.endswith(")") and ":" in frame:
        head, _, _ = frame.rpartition(":")
        return head + ")"
    return frame


def read_stacks(raw: Path) -> tuple[list[tuple[list[str], int]], int]:
    """Busy stacks (outermost first) with their sample counts, and the idle sample count."""
    busy: list[tuple[list[str], int]] = []
    idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or any(m in frames[-1] for m in IDLE_LEAVES):
            idle += int(count)
            continue
        busy.append((frames, int(count)))
    return busy, idle


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the busy samples: by owning package, under our frames, top functions."""
    busy, idle = read_stacks(raw)
    total = sum(n for _, n in busy)
    by_owner: dict[str, int] = {}
    under_ours = 0
    incl: dict[str, int] = {}
    leaf: dict[str, int] = {}
    own_fn: dict[str, int] = {}
    for frames, n in busy:
        inner = next((f for f in reversed(frames) if owner(f)), None)
        leaf_owner = owner(inner) if inner else STDLIB
        key = strip_line(inner) if inner else "(standard library only)"
        own_fn[key] = own_fn.get(key, 0) + n
        by_owner[leaf_owner] = by_owner.get(leaf_owner, 0) + n
        if any(frame_file(f).startswith("cliproxy/") and "HTTPChannel." not in f for f in frames):
            under_ours += n  # not counting our HTTPChannel subclass, which holds nearly all
        for fn in {strip_line(f) for f in frames}:
            incl[fn] = incl.get(fn, 0) + n
        fn = strip_line(frames[-1])
        leaf[fn] = leaf.get(fn, 0) + n
    pct = (lambda v: round(100 * v / total, 1)) if total else (lambda v: 0.0)
    leaves = sorted(leaf.items(), key=lambda kv: -kv[1])
    return {
        "samples": total,
        "idle_samples": idle,
        "owners": {k: pct(v) for k, v in sorted(by_owner.items(), key=lambda kv: -kv[1])},
        "under_cliproxy_pct": pct(under_ours),
        # shares above 0.5 %: inclusive, and self with the standard library it calls
        "inclusive": {fn: pct(v) for fn, v in incl.items() if v >= total / 200},
        "own": {fn: pct(v) for fn, v in own_fn.items() if v >= total / 200},
        "self": [[fn, pct(v)] for fn, v in leaves[:top]],
        # one identical stack with many samples: py-spy samples a runnable thread even while
        # the kernel has it off the CPU, so on a loaded machine a preemption shows as a burst
        "largest_stack": [strip_line(big[0][-1]), pct(big[1])]
        if (big := max(busy, key=lambda b: b[1], default=None))
        else None,
    }


def record(
    spy: str, pid: int, out: Path, name: str, leg: Callable[[], Any], rate: int = 200
) -> tuple[Any, Path, Path]:
    """Run `leg()` with py-spy attached to `pid`; returns (leg's result, raw, svg)."""
    raw, svg = out / f"profile-{name}.txt", out / f"flame-{name}.svg"
    procs = []
    for fmt, path in (("raw", raw), ("flamegraph", svg)):
        cmd = [spy, "record", "--nonblocking", "-r", str(rate), "-f", fmt, "-o", str(path)]
        logf = open(out / f"py-spy-{name}-{fmt}.log", "wb")
        procs.append(subprocess.Popen([*cmd, "-p", str(pid)], stdout=logf, stderr=logf))
    time.sleep(1.5)  # let py-spy attach
    res = leg()
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    return res, raw, svg


def per_unit(summary: dict[str, Any], cpu_us: float | None) -> dict[str, float]:
    """The owner shares as CPU µs per request/stream."""
    if not cpu_us:
        return {}
    return {k: cpu_us * v / 100 for k, v in summary["owners"].items()}


def tag(fn: str) -> str:
    group = owner(fn)
    return "ours" if group == "cliproxy" else (group or "stdlib").split(" ")[0]


def extra_frames(floor: dict[str, Any], mine: dict[str, Any], top: int = 15) -> list[str]:
    """Functions by how many more µs per unit cliproxy spends in them than the floor.

    Self time, counting the standard library a function calls as its own (a `json.loads`
    under cliproxy's parser is the parser's; the socket send under Twisted's is Twisted's).
    """
    fu, mu = floor.get("cpu_us_per") or 0.0, mine.get("cpu_us_per") or 0.0
    fo, mo = floor["summary"]["own"], mine["summary"]["own"]
    rows = []
    for fn in set(fo) | set(mo):
        f, m = fu * fo.get(fn, 0) / 100, mu * mo.get(fn, 0) / 100
        rows.append((m - f, fn, f, m))
    rows.sort(reverse=True)
    return [
        f"{d:+6.0f} µs  ({f:4.0f} -> {m:4.0f})  [{tag(fn)}]  {fn}" for d, fn, f, m in rows[:top]
    ]


def our_frames(mine: dict[str, Any], top: int = 12) -> list[str]:
    """cliproxy's functions by inclusive µs per unit (with the Twisted work they call)."""
    mu = mine.get("cpu_us_per") or 0.0
    rows = sorted(
        (
            (share, fn)
            for fn, share in mine["summary"]["inclusive"].items()
            if fn.endswith(".py)") and "(cliproxy/" in fn and "HTTPChannel." not in fn
        ),
        reverse=True,
    )
    return [f"{mu * share / 100:6.0f} µs  {share:5.1f} %  {fn}" for share, fn in rows[:top]]


def render(profiles: dict[str, dict[str, Any]]) -> str:
    """Floor against cliproxy, per leg: µs per request by owning package, then frames.

    `profiles[name]` holds `leg`, `target`, `cpu_us_per`, `svg` and `summary`.
    """
    lines: list[str] = []
    for leg in sorted({p["leg"] for p in profiles.values()}):
        mine = {p["target"]: p for p in profiles.values() if p["leg"] == leg}
        floor = mine.get("floor")
        unit = "stream" if leg.startswith("stream") else "request"
        lines += [f"### {leg}: CPU µs per {unit} by owning package (py-spy shares x /proc CPU)", ""]
        cols = [t for t in mine if t != "floor"]
        head = "| package (innermost non-stdlib frame) | floor | " + " | ".join(cols)
        head += " | " + " | ".join(f"{c} − floor" for c in cols)
        lines += [head + " |", "|---" * (2 + 2 * len(cols)) + "|"]
        units = {t: per_unit(p["summary"], p.get("cpu_us_per")) for t, p in mine.items()}
        for g in [g for g, _ in OWNERS] + [STDLIB]:
            vals = {t: units[t].get(g, 0.0) for t in mine}
            if not any(vals.values()):
                continue
            fl = vals.get("floor", 0.0)
            row = f"| {g} | {fl:.0f} | " + " | ".join(f"{vals[c]:.0f}" for c in cols)
            row += " | " + " | ".join(f"{vals[c] - fl:+.0f}" for c in cols) + " |"
            lines.append(row)
        tot = {t: p.get("cpu_us_per") or 0.0 for t, p in mine.items()}
        fl = tot.get("floor", 0.0)
        row = f"| **total (/proc)** | {fl:.0f} | " + " | ".join(f"{tot[c]:.0f}" for c in cols)
        lines += [row + " | " + " | ".join(f"{tot[c] - fl:+.0f}" for c in cols) + " |", ""]
        for t, p in mine.items():
            s = p["summary"]
            lines.append(
                f"- {t}: {s['samples']} busy samples ({s['idle_samples']} idle left out), "
                f"other load {p.get('other_pct', 0) / 100:.2f} cores"
                + (
                    f", {s['under_cliproxy_pct']} % under a cliproxy frame (below the channel)"
                    if t != "floor"
                    else ""
                )
                + f"; `{p['svg']}`"
            )
            big = s.get("largest_stack")
            if big and big[1] > 5:
                lines.append(
                    f"  - one stack alone holds {big[1]} % (leaf `{big[0]}`): probably the process "
                    "preempted there while runnable (py-spy samples wall time), not CPU spent"
                )
        lines.append("")
        if floor is not None:
            for c in cols:
                lines += [
                    f"Where {c} spends more than the floor ({leg}; µs per {unit} of self time, "
                    "the standard library counted with its caller; floor -> cliproxy):",
                    "",
                    "```",
                    *extra_frames(floor, mine[c]),
                    "```",
                    "",
                ]
        for c in cols:
            lines += [
                f"cliproxy's own functions, inclusive ({c}, {leg}; µs per {unit}, share):",
                "",
                "```",
                *our_frames(mine[c]),
                "```",
                "",
            ]
        for t, p in mine.items():
            lines += [f"Top leaf frames (self time), {t} {leg}:", "", "```"]
            lines += [
                f"{share:5.1f} %  [{tag(fn)}]  {fn}" for fn, share in p["summary"]["self"][:10]
            ]
            lines += ["```", ""]
    return "\n".join(lines) + "\n"
