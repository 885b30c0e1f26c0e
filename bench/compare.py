"""`bench/run --compare`: direct, the Twisted floor and cliproxy (1 and 2 workers) in one run.

Each cliproxy figure is given as a ratio to the floor's from the same run (bench/floor.py:
stock `ReverseProxyResource` on the same Twisted), so runs on noisy machines compare.
CPU is summed over a process and its children (a cliproxy with workers).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from run import BENCH, REPO, Bench, Proc, cliproxy_config, free_port, log, wait_http

LEGS = (("nonstream", 1), ("nonstream", 64), ("stream", 1), ("stream", 256))


def tree(pid: int) -> list[int]:
    """`pid` and its children (one level: cliproxy's workers)."""
    out = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def tree_cpu(pid: int) -> float:
    return sum(Proc(p).cpu() for p in tree(pid))


class Compare(Bench):
    def start(self, name: str, cmd: list[str]) -> tuple[subprocess.Popen, int]:
        port = free_port()
        logf = self.out / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [c.replace("{port}", str(port)) for c in cmd]
        for arg in cmd:
            if arg.endswith(".yaml"):  # a config template: its port now
                conf = Path(arg)
                conf.write_text(conf.read_text().replace("{port}", str(port)))
        p = subprocess.Popen(cmd, cwd=self.out, env=env, stdout=open(logf, "wb"), stderr=-2)
        self.procs.append(p)
        wait_http(f"http://127.0.0.1:{port}/healthz", p, name, logf)
        time.sleep(6)  # workers start (and import) after the first process listens
        return p, port

    def cliproxy(self, workers: int) -> list[str]:
        conf = self.out / f"cliproxy-w{workers}.yaml"
        text = cliproxy_config(self.out, 0, self.up_port).replace("port: 0", "port: {port}")
        conf.write_text(text + f"workers: {workers}\n")
        twistd = "from twisted.scripts.twistd import run; run()"
        py = os.path.abspath(self.args.python)
        return [py, "-c", twistd, "-n", "--pidfile=", "cliproxy", "--config", str(conf)]

    def leg(self, kind: str, conc: int, port: int, pid: int | None) -> dict[str, Any]:
        c0, t0 = (tree_cpu(pid) if pid else 0.0), time.monotonic()
        if kind == "nonstream":
            res = self.wrk(port, conc, self.args.duration)
            n = res["requests"]
        else:
            res = self.streams(port, conc, 16 if conc == 1 else self.args.per_conn_256)
            n = res.get("count") or res.get("streams") or 0
        wall = time.monotonic() - t0
        cpu = (tree_cpu(pid) - c0) if pid else 0.0
        res["cpu_pct"] = round(100 * cpu / wall, 1)
        res["cpu_us_per"] = round(1e6 * cpu / n, 0) if n else None
        res["other_cpu_pct"] = None
        return res

    def run_compare(self) -> dict[str, Any]:
        self.results = {"legs": {}, "command": "bench/run --compare", "label": self.args.label}
        try:
            self.start_nginx()
            targets: dict[str, tuple[int, int | None]] = {"direct": (self.up_port, None)}
            py = os.path.abspath(self.args.python)
            floor = [py, str(BENCH / "floor.py"), "{port}", str(self.up_port)]
            p, port = self.start("floor", floor)
            targets["floor"] = (port, p.pid)
            for w in (1, 2):
                p, port = self.start(f"cliproxy-w{w}", self.cliproxy(w))
                targets[f"cliproxy-w{w}"] = (port, p.pid)
            for port, _ in targets.values():  # warm-up
                self.wrk(port, 16, 2)
            for kind, conc in LEGS:
                for name, (port, pid) in targets.items():
                    log(f"{kind} c{conc}: {name}")
                    self.results["legs"].setdefault(f"{kind}-c{conc}", {})[name] = self.leg(
                        kind, conc, port, pid
                    )
        finally:
            self.stop()
        return self.results


def figure(res: dict[str, Any], kind: str) -> tuple[float | None, float | None]:
    """(the leg's headline figure, CPU µs per request or stream)."""
    if kind == "nonstream":
        return res.get("rps"), res.get("cpu_us_per")
    return res.get("ttfb_ms", {}).get("p50"), res.get("cpu_us_per")


def report(results: dict[str, Any]) -> str:
    names = ["direct", "floor", "cliproxy-w1", "cliproxy-w2"]
    lines = [
        "| leg | figure | " + " | ".join(names) + " | w1 / floor | w2 / floor |",
        "|---|---|" + "---|" * (len(names) + 2),
    ]
    for leg, by_name in results["legs"].items():
        kind = leg.split("-")[0]
        what = "req/s" if kind == "nonstream" else "TTFB p50 ms"
        for i, label in enumerate((what, "CPU µs each")):
            vals = [figure(by_name[n], kind)[i] for n in names]
            floor = vals[1]
            ratios = [f"{v / floor:.2f}x" if v is not None and floor else "—" for v in vals[2:]]
            cells = ["—" if v is None else f"{v:g}" for v in vals]
            lines.append(f"| {leg} | {label} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines) + "\n"
