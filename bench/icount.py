"""`bench/run --icount`: instructions per request and per stream, counted by callgrind.

Wall-clock and /proc CPU figures swing by tens of percent on a shared machine; the
number of instructions a process executes for a request hardly does. The floor
(bench/floor.py) and cliproxy each run under `valgrind --tool=callgrind` with
instrumentation off while they start; then, per leg, `callgrind_control` turns it on,
zeroes the counters, the load runs, and a dump gives the instructions executed (Ir)
in that leg, divided by the requests or streams completed. Concurrency is kept low
(the process runs ~50x slower under callgrind), so these legs measure cost per request,
not behaviour under saturation; --compare is for that.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from compare import Compare
from fake import BENCH
from sysinfo import log

LEGS = (("nonstream", 1), ("nonstream", 8), ("stream", 1), ("stream", 8))
TARGETS = [
    ("floor", "openai"),
    ("floor", "claude"),
    ("cliproxy", "openai"),
    ("cliproxy", "claude"),
    ("cliproxy", "chat2claude"),
]
BASE = {"openai": "openai", "claude": "claude", "chat2claude": "claude"}


def ctl(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], capture_output=True, check=True)


def last_dump(prefix: Path) -> int:
    """Ir of the newest `prefix.N` dump (callgrind's `summary:` line)."""
    dumps = sorted(prefix.parent.glob(prefix.name + ".*"), key=lambda p: int(p.suffix[1:]))
    for line in dumps[-1].read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"bench: no summary line in {dumps[-1]}")


class ICount(Compare):
    idle: dict[int, float] = {}  # noqa: RUF012 - replaced, never mutated

    def grind(self, name: str, cmd: list[str]) -> tuple[int, int, Path]:
        prefix = self.out / f"callgrind-{name}"
        vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        vg += [f"--callgrind-out-file={prefix}.%p"]
        port, pid = self.start(name, vg + cmd)
        ctl("-i", "on", str(pid))
        return port, pid, Path(f"{prefix}.{pid}")

    def idle_rate(self, pid: int, prefix: Path, seconds: float = 10.0) -> float:
        """Ir per second the process spends with no request (timers: config and auth-dir
        watchers...); subtracted from each leg, since a slow leg would otherwise carry
        more of it per request."""
        ctl("-z", str(pid))
        t0 = time.monotonic()
        time.sleep(seconds)
        ctl("-d", str(pid))
        wall = time.monotonic() - t0
        time.sleep(0.5)
        return last_dump(prefix) / wall

    def count(self, kind: str, conc: int, port: int, pid: int, flavour: str, prefix: Path) -> Any:
        ctl("-z", str(pid))
        t0 = time.monotonic()
        if kind == "nonstream":
            n = self.wrk(port, conc, self.args.duration, flavour)["requests"]
        else:
            n = self.streams(port, conc, max(2, 16 // conc), flavour)["streams"]
        ctl("-d", str(pid))
        wall = time.monotonic() - t0
        time.sleep(0.5)
        idle = self.idle.get(pid, 0.0) * wall
        return round((last_dump(prefix) - idle) / n) if n else None

    def run_icount(self) -> dict[str, Any]:
        a = self.args
        self.results = {"legs": {}, "reps": a.reps, "loadavg_start": os.getloadavg()}
        try:
            self.start_nginx()
            py = os.path.abspath(a.python)
            floor = [py, str(BENCH / "floor.py"), "{port}", str(self.up_port)]
            servers = {
                "floor": self.grind("floor", floor),
                "cliproxy": self.grind("cliproxy", self.cliproxy(1)),
            }
            targets = list(TARGETS)
            if getattr(a, "treq_floor", False):  # cliproxy's provider client, nothing else
                relay = [py, str(BENCH / "floor_treq.py"), "{port}", str(self.up_port)]
                servers["treqfloor"] = self.grind("treqfloor", relay)
                targets += [("treqfloor", "openai"), ("treqfloor", "claude")]
            for server, flavour in targets:
                port, pid, prefix = servers[server]
                self.check(f"{server} {flavour}", port, flavour)  # also a warm-up
                self.count("nonstream", 8, port, pid, flavour, prefix)  # fills the pool
            for rep in range(a.reps):
                self.idle = {p: self.idle_rate(p, pre) for _, p, pre in servers.values()}
                self.results.setdefault("idle_ir_per_s", []).append(
                    {name: round(self.idle[pid]) for name, (_, pid, _) in servers.items()}
                )
                log(f"icount rep {rep + 1}: idle Ir/s {self.results['idle_ir_per_s'][-1]}")
                for kind, conc in LEGS:
                    for server, flavour in targets:
                        port, pid, prefix = servers[server]
                        ir = self.count(kind, conc, port, pid, flavour, prefix)
                        log(f"icount rep {rep + 1} {kind} c{conc} {server} {flavour}: {ir} Ir each")
                        leg = self.results["legs"].setdefault(f"{kind}-c{conc}", {})
                        leg.setdefault(f"{server} {flavour}", []).append(ir)
        finally:
            self.stop()
        (self.out / "icount.json").write_text(json.dumps(self.results, indent=1) + "\n")
        return self.results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Instructions (callgrind Ir) per request or per stream; median of {results['reps']} "
        "repetitions, [min–max]; the ratio is taken within each repetition. What a process "
        "executes while idle (timers), measured over 10 s before each repetition, is "
        f"subtracted (Ir/s idle: {results.get('idle_ir_per_s')}).",
        "",
        "| leg | flavour | floor Ir | cliproxy Ir | cliproxy / floor |",
        "|---|---|---|---|---|",
    ]
    for leg, by in results["legs"].items():
        for flavour in ("openai", "claude", "chat2claude"):
            mine, floor = by[f"cliproxy {flavour}"], by[f"floor {BASE[flavour]}"]
            ratios = [m / f for m, f in zip(mine, floor, strict=True) if m and f]
            lines.append(
                f"| {leg} | {flavour} | {kilo(floor)} | {kilo(mine)} | "
                f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}–{max(ratios):.2f}] |"
            )
    if any("treqfloor openai" in by for by in results["legs"].values()):
        lines += [
            "",
            "The treq floor (`--treq-floor`, bench/floor_treq.py): a bare Resource relaying "
            "through treq's HTTPClient on a persistent pool, cliproxy's provider client with "
            "none of cliproxy's work; its ratio to the stock floor, and cliproxy's to it:",
            "",
            "| leg | flavour | treq floor Ir | treq floor / floor | cliproxy / treq floor |",
            "|---|---|---|---|---|",
        ]
        for leg, by in results["legs"].items():
            for flavour in ("openai", "claude", "chat2claude"):
                base = BASE[flavour]
                relay, floor = by[f"treqfloor {base}"], by[f"floor {base}"]
                mine = by[f"cliproxy {flavour}"]
                over = [r / f for r, f in zip(relay, floor, strict=True) if r and f]
                ours = [m / r for m, r in zip(mine, relay, strict=True) if m and r]
                lines.append(f"| {leg} | {flavour} | {kilo(relay)} | {span(over)} | {span(ours)} |")
    return "\n".join(lines) + "\n"


def span(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}–{max(ratios):.2f}]"


def kilo(values: list[int]) -> str:
    def k(v: float) -> str:
        return f"{v / 1000:.0f}k"

    vals = [v for v in values if v]
    med = statistics.median(vals)
    return f"{k(med)} [{k(min(vals))}–{k(max(vals))}]"
