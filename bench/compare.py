"""`bench/run --compare`: direct, the Twisted floor and cliproxy, in one run, repeated.

Each cliproxy figure is given as a ratio to the floor's from the same repetition
(bench/floor.py: stock `ReverseProxyResource` on the same Twisted), so runs on noisy
machines compare; the report gives the median over `--reps` repetitions and the spread
(min-max). Repetitions alternate: every target runs a leg before any runs it again.
CPU is summed over a process and its children (a cliproxy with workers).

Flavours (bench/fake.py FLAVOURS): same-format OpenAI chat, same-format Claude messages
and Chat->Claude translated. The floor relays the Claude request for the last two, so
the translated ratio is against the same upstream bytes. Optional: cliproxy with 2
workers (`--compare-workers`), LiteLLM's proxy when `--python` can import `litellm`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from fake import BENCH, CHUNKS, MODEL, REPO, UPSTREAM_KEY, cliproxy_config
from run import Bench
from sysinfo import Proc, free_port, log, wait_http

LEGS = (("nonstream", 1), ("nonstream", 64), ("stream", 1), ("stream", 256))
#: (column, server, flavour, floor column it is divided by)
COLUMNS = [
    ("cliproxy openai", "cliproxy", "openai", "floor openai"),
    ("cliproxy claude", "cliproxy", "claude", "floor claude"),
    ("cliproxy chat->claude", "cliproxy", "chat2claude", "floor claude"),
]


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


def litellm_config(out: Path, upstream_port: int) -> Path:
    conf = out / "litellm.yaml"
    model = {
        "model_name": MODEL,
        "litellm_params": {
            "model": f"openai/{MODEL}",
            "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": UPSTREAM_KEY,
        },
    }
    conf.write_text(json.dumps({"model_list": [model]}))  # JSON is YAML
    return conf


class Compare(Bench):
    def start(self, name: str, cmd: list[str], health: str = "/healthz") -> tuple[int, int]:
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
        wait_http(f"http://127.0.0.1:{port}{health}", p, name, logf, limit=120)
        time.sleep(6)  # workers start (and import) after the first process listens
        return port, p.pid

    def cliproxy(self, workers: int) -> list[str]:
        conf = self.out / f"cliproxy-w{workers}.yaml"
        text = cliproxy_config(self.out, 0, self.up_port).replace("port: 0", "port: {port}")
        conf.write_text(text + f"workers: {workers}\n")
        twistd = "from twisted.scripts.twistd import run; run()"
        py = os.path.abspath(self.args.python)
        return [py, "-c", twistd, "-n", "--pidfile=", "cliproxy", "--config", str(conf)]

    def check(self, name: str, port: int, flavour: str) -> None:
        """One non-stream and one stream request; stop with the body if either is wrong."""
        for stream in (False, True):
            status, body = self.post(port, stream, flavour)
            ok = status == 200 and (body.count(b"data:") >= CHUNKS - 5 if stream else b"{" in body)
            if not ok:
                raise SystemExit(
                    f"bench: {name} {flavour} stream={stream}: {status} {body[:400]!r}"
                )

    def leg(self, kind: str, conc: int, port: int, pid: int | None, flavour: str) -> dict[str, Any]:
        c0, t0 = (tree_cpu(pid) if pid else 0.0), time.monotonic()
        if kind == "nonstream":
            res = self.wrk(port, conc, self.args.duration, flavour)
            n = res["requests"]
        else:
            per = 16 if conc == 1 else self.args.per_conn_256
            res = self.streams(port, conc, per, flavour)
            n = res.get("streams") or 0
        wall = time.monotonic() - t0
        cpu = (tree_cpu(pid) - c0) if pid else 0.0
        res["cpu_pct"] = round(100 * cpu / wall, 1)
        res["cpu_us_per"] = round(1e6 * cpu / n, 0) if n and pid else None
        res["peak_rss_kb"] = (
            max((Proc(p).status_kb("VmHWM") for p in tree(pid)), default=0) if pid else 0
        )
        return res

    def run_compare(self) -> dict[str, Any]:
        a = self.args
        self.results = {
            "legs": {},
            "command": "bench/run --compare",
            "label": a.label,
            "reps": a.reps,
        }
        self.results["loadavg_start"] = os.getloadavg()
        columns = list(COLUMNS)
        try:
            self.start_nginx()
            py = os.path.abspath(a.python)
            servers: dict[str, tuple[int, int | None]] = {"direct": (self.up_port, None)}
            servers["floor"] = self.start(
                "floor", [py, str(BENCH / "floor.py"), "{port}", str(self.up_port)]
            )
            servers["cliproxy"] = self.start("cliproxy-w1", self.cliproxy(1))
            if a.compare_workers:
                servers["cliproxy-w2"] = self.start("cliproxy-w2", self.cliproxy(2))
                columns.append(
                    ("cliproxy openai, 2 workers", "cliproxy-w2", "openai", "floor openai")
                )
            probe = subprocess.run([py, "-c", "import litellm"], capture_output=True)
            if probe.returncode == 0:
                conf = litellm_config(self.out, self.up_port)
                cmd = [
                    py,
                    "-m",
                    "litellm.proxy.proxy_cli",
                    "--config",
                    str(conf),
                    "--port",
                    "{port}",
                ]
                servers["litellm"] = self.start("litellm", cmd, "/health/liveliness")
                columns.append(("LiteLLM openai", "litellm", "openai", "floor openai"))
            else:
                log("LiteLLM leg skipped: `import litellm` fails on --python")
            base = [
                (f"{s} {f}", s, f, None) for s in ("direct", "floor") for f in ("openai", "claude")
            ]
            plan = base + [(c, s, f, None) for c, s, f, _ in columns]
            for col, server, flavour, _ in plan:
                if server != "direct":
                    self.check(col, servers[server][0], flavour)
            for _, server, flavour, _ in plan:  # warm-up
                self.wrk(servers[server][0], 16, 2, flavour)
            self.results["columns"] = [[c, b] for c, _, _, b in columns]
            for rep in range(a.reps):
                for kind, conc in LEGS:
                    for col, server, flavour, _ in plan:
                        log(f"rep {rep + 1}/{a.reps} {kind} c{conc}: {col}")
                        port, pid = servers[server]
                        res = self.leg(kind, conc, port, pid, flavour)
                        self.results["legs"].setdefault(f"{kind}-c{conc}", {}).setdefault(
                            col, []
                        ).append(res)
        finally:
            self.stop()
        self.results["loadavg_end"] = os.getloadavg()
        (self.out / "compare.json").write_text(json.dumps(self.results, indent=1) + "\n")
        return self.results


def figure(res: dict[str, Any], kind: str, i: int) -> float | None:
    """The leg's headline figure (i=0: req/s or TTFB p50 ms) or CPU µs per request/stream."""
    if i == 1:
        return res.get("cpu_us_per")
    if kind == "nonstream":
        return res.get("rps")
    return res.get("ttfb_ms", {}).get("p50")


def num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def spread(values: list[float | None], unit: str = "") -> str:
    """'median [min-max]' of the values that were measured."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{num(med)}{unit}"
    return f"{num(med)}{unit} [{num(min(vals))}–{num(max(vals))}]"


def report(results: dict[str, Any]) -> str:
    reps = results.get("reps", 1)
    lines = [
        f"Medians of {reps} alternating repetitions, [min–max] across them. A ratio is taken "
        "within each repetition (cliproxy / floor of that repetition), then its median.",
        "",
        "| leg | cliproxy | figure | direct | floor | cliproxy | cliproxy / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for leg, by_col in results["legs"].items():
        kind = leg.split("-")[0]
        what = "req/s" if kind == "nonstream" else "TTFB p50 ms"
        for col, base in results["columns"]:
            flav = base.split()[-1]
            for i, label in enumerate((what, "CPU µs each")):
                mine = [figure(r, kind, i) for r in by_col[col]]
                floor = [figure(r, kind, i) for r in by_col[base]]
                direct = [figure(r, kind, i) for r in by_col[f"direct {flav}"]] if i == 0 else []
                ratios = [
                    m / f if m is not None and f else None
                    for m, f in zip(mine, floor, strict=False)
                ]
                lines.append(
                    f"| {leg} | {col.removeprefix('cliproxy ')} | {label} | {spread(direct)} | "
                    f"{spread(floor)} | {spread(mine)} | {spread(ratios, 'x')} |"
                )
    peaks = {
        col: max(r.get("peak_rss_kb", 0) for r in by_col.get(col, [{}]))
        for by_col in [results["legs"].get("stream-c256", {})]
        for col, _ in results["columns"] + [["floor openai", ""]]
    }
    lines += ["", "Peak RSS in the 256-stream leg (VmHWM of the process, largest): "]
    lines[-1] += ", ".join(f"{c} {kb / 1024:.1f} MB" for c, kb in peaks.items() if kb)
    la0, la1 = results.get("loadavg_start"), results.get("loadavg_end")
    if la0 and la1:
        lines += ["", f"Load average at start {la0[0]:.2f}, at the end {la1[0]:.2f} (2 cores)."]
    return "\n".join(lines) + "\n"
