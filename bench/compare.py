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

import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import flame
from fake import (
    BENCH,
    CHUNKS,
    CLIENT_KEY,
    LITELLM_STREAM_MODEL,
    MODEL,
    QUIET_CORES,
    UPSTREAM_KEY,
    cliproxy_config,
)
from run import Bench
from sysinfo import (
    Proc,
    children_cpu_s,
    free_port,
    log,
    machine,
    machine_cpu_s,
    nginx_pids,
    pythonpath,
    wait_http,
    wait_quiet,
)

LEGS = (("nonstream", 1), ("nonstream", 64), ("stream", 1), ("stream", 256))
#: (column, server, flavour, floor column it is divided by)
COLUMNS = [
    ("cliproxy openai", "cliproxy", "openai", "floor openai"),
    ("cliproxy claude", "cliproxy", "claude", "floor claude"),
    ("cliproxy chat->claude", "cliproxy", "chat2claude", "floor claude"),
]
W2 = "cliproxy openai, 2 workers"
LITELLM = "LiteLLM openai"


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


def run_time(pid: int) -> tuple[float, float, frozenset[str]]:
    """(schedstat seconds, stat seconds, thread ids) of `pid`.

    schedstat (time on a CPU, summed over the threads) is exact to the nanosecond but loses
    a thread's time when the thread exits; /proc/<pid>/stat keeps it but counts in 10 ms
    ticks (16 streams in a row at ~8 ms each would be read to ±5 %). `cpu_between` takes
    schedstat when no thread went away, else stat (LiteLLM's threads come and go).
    """
    stat = Proc(pid).cpu()
    try:
        tasks = frozenset(os.listdir(f"/proc/{pid}/task"))
        exact = 0.0
        for t in tasks:
            exact += int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0]) / 1e9
        return exact, stat, tasks
    except (OSError, ValueError, IndexError):
        return stat, stat, frozenset()


def tree_cpu(pid: int) -> dict[int, tuple[float, float, frozenset[str]]]:
    return {p: run_time(p) for p in tree(pid)}


def cpu_between(
    before: dict[int, tuple[float, float, frozenset[str]]],
    after: dict[int, tuple[float, float, frozenset[str]]],
) -> float:
    """CPU seconds used between two `tree_cpu` readings (see `run_time`)."""
    total = 0.0
    for p, (exact1, stat1, tasks1) in after.items():
        exact0, stat0, tasks0 = before.get(p, (0.0, 0.0, frozenset()))
        total += exact1 - exact0 if tasks0 <= tasks1 else stat1 - stat0
    return total


def tree_user(pids: list[int]) -> float:
    return sum(Proc(p).cpu_split()[0] for p in pids)


def litellm_config(out: Path, upstream_port: int) -> Path:
    conf = out / "litellm.yaml"
    params = {
        "model": f"openai/{MODEL}",
        "api_base": f"http://127.0.0.1:{upstream_port}/v1",
        "api_key": UPSTREAM_KEY,
    }
    sse = {**params, "extra_headers": {"Accept": "text/event-stream"}}
    models = [
        {"model_name": MODEL, "litellm_params": params},
        {"model_name": LITELLM_STREAM_MODEL, "litellm_params": sse},
    ]
    settings = {"telemetry": False, "turn_off_message_logging": True}
    general = {"master_key": CLIENT_KEY}  # it checks the client's key, as cliproxy does
    conf.write_text(
        json.dumps(
            {"model_list": models, "litellm_settings": settings, "general_settings": general}
        )
    )
    return conf  # JSON is YAML


#: LiteLLM must reach nothing but loopback: no model-cost map download, no telemetry
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_SCHEMA_UPDATE": "True",
    "NO_DOCS": "True",
    "DO_NOT_TRACK": "1",
    "HTTP_PROXY": "",
    "HTTPS_PROXY": "",
    "NO_PROXY": "127.0.0.1,localhost",
}


class Compare(Bench):
    def start(
        self, name: str, cmd: list[str], health: str = "/healthz", env: dict[str, str] | None = None
    ) -> tuple[int, int]:
        port = free_port()
        logf = self.out / f"{name}.log"
        env = {
            **os.environ,
            "PYTHONPATH": pythonpath(),
            "CLIPROXY_LOCAL_MODEL": "1",
            **(env or {}),
        }
        cmd = [c.replace("{port}", str(port)) for c in cmd]
        for arg in cmd:
            if arg.endswith(".yaml"):  # a config template: its port now
                conf = Path(arg)
                conf.write_text(conf.read_text().replace("{port}", str(port)))
        p = subprocess.Popen(cmd, cwd=self.out, env=env, stdout=open(logf, "wb"), stderr=-2)
        self.procs.append(p)
        wait_http(f"http://127.0.0.1:{port}{health}", p, name, logf, limit=300)
        time.sleep(6)  # workers start (and import) after the first process listens
        log(f"{name} on 127.0.0.1:{port}, pid {p.pid} ({len(tree(p.pid))} processes)")
        return port, p.pid

    def cliproxy(self, workers: int) -> list[str]:
        conf = self.out / f"cliproxy-w{workers}.yaml"
        text = cliproxy_config(self.out, 0, self.up_port).replace("port: 0", "port: {port}")
        conf.write_text(text + f"workers: {workers}\n")
        twistd = "from twisted.scripts.twistd import run; run()"
        py = os.path.abspath(self.args.python)
        return [py, "-c", twistd, "-n", "--pidfile=", "cliproxy", "--config", str(conf)]

    def litellm_python(self) -> str | None:
        """The interpreter for the LiteLLM leg: --litellm-python, else --python if it has it."""
        a = self.args
        for py in [p for p in (a.litellm_python, a.python) if p]:
            if subprocess.run([py, "-c", "import litellm"], capture_output=True).returncode == 0:
                return os.path.abspath(py)
            if py == a.litellm_python:
                raise SystemExit(f"bench: --litellm-python {py} cannot `import litellm`")
        return None

    def check(self, name: str, port: int, flavour: str) -> None:
        """One non-stream and one stream request; stop with the body if either is wrong."""
        for stream in (False, True):
            status, body = self.post(port, stream, flavour)
            ok = status == 200 and (body.count(b"data:") >= CHUNKS - 5 if stream else b"{" in body)
            if not ok:
                raise SystemExit(
                    f"bench: {name} {flavour} stream={stream}: {status} {body[:400]!r}"
                )

    def leg(
        self, kind: str, conc: int, port: int, pid: int | None, flavour: str, per_conn: int
    ) -> dict[str, Any]:
        pids = tree(pid) if pid else []
        for p in pids:
            Proc(p).reset_peak()
        ng = nginx_pids(self.nginx.pid)
        ng0, px0 = tree_user(ng), tree_user(pids)
        (_, cl0), (_, mu0) = children_cpu_s(), machine_cpu_s()
        c0, t0 = (tree_cpu(pid) if pid else {}), time.monotonic()
        if kind == "nonstream":
            res = self.wrk(port, conc, self.args.duration, flavour)
            n = res["requests"]
        else:
            # LiteLLM's 256-stream TTFB reaches 10-15 s on a loaded machine: let it finish
            limit = 120.0 if flavour == "litellm" else 30.0
            res = self.streams(port, conc, per_conn, flavour, limit)
            n = res.get("streams") or 0
        wall = time.monotonic() - t0
        cpu = cpu_between(c0, tree_cpu(pid)) if pid else 0.0
        (_, cl1), (_, mu1) = children_cpu_s(), machine_cpu_s()
        ngu, pxu = tree_user(ng) - ng0, tree_user(pids) - px0
        res["cpu_pct"] = round(100 * cpu / wall, 1)
        res["cpu_us_per"] = round(1e6 * cpu / n, 0) if n and pid else None
        res["nginx_user_pct"] = round(100 * ngu / wall, 1)
        res["client_user_pct"] = round(100 * (cl1 - cl0) / wall, 1)
        # user CPU of everything else on the machine meanwhile (user time only: loopback TCP
        # work lands in softirq time nobody is charged for); 100 = one core taken
        ours = pxu + ngu + (cl1 - cl0)
        res["other_pct"] = round(max(0.0, 100 * ((mu1 - mu0) - ours) / wall), 1)
        rss = [Proc(p).status_kb("VmHWM") for p in pids]
        res["peak_rss_kb"] = max(rss, default=0)
        res["peak_rss_sum_kb"] = sum(rss)
        return res

    def run_compare(self) -> dict[str, Any]:
        a = self.args
        self.results = {
            "legs": {},
            "command": " ".join(["bench/run", *sys.argv[1:]]),
            "label": a.label,
            "reps": a.reps,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(a.python),
        }
        started = time.monotonic()
        load = wait_quiet(a.wait_quiet, QUIET_CORES)
        self.results["other_load_before_cores"] = round(load, 2)
        self.results["loadavg_start"] = os.getloadavg()
        columns = list(COLUMNS)
        per_conn: dict[str, int] = {}
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
                columns.append((W2, "cliproxy-w2", "openai", "floor openai"))
            lpy = self.litellm_python() if a.reps else None
            if lpy:
                conf = litellm_config(self.out, self.up_port)
                cmd = [lpy, "-m", "litellm.proxy.proxy_cli", "--config", str(conf)]
                cmd += ["--host", "127.0.0.1", "--port", "{port}", "--num_workers", "1"]
                servers["litellm"] = self.start(
                    "litellm", cmd, "/health/liveliness", env=LITELLM_ENV
                )
                columns.append((LITELLM, "litellm", "litellm", "floor openai"))
                per_conn["litellm"] = 1  # ~30 streams/s: 256 streams take ~10 s
                probe = "from importlib.metadata import version; print(version('litellm'))"
                self.results["litellm_version"] = subprocess.run(
                    [lpy, "-c", probe],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
            elif a.reps:
                log("LiteLLM leg skipped: no --litellm-python; `import litellm` fails on --python")
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
                        pc = 16 if conc == 1 else per_conn.get(server, a.per_conn_256)
                        res = self.leg(kind, conc, port, pid, flavour, pc)
                        self.results["legs"].setdefault(f"{kind}-c{conc}", {}).setdefault(
                            col, []
                        ).append(res)
            if a.profile:
                self.profile(servers)
        finally:
            self.stop()
        self.results["loadavg_end"] = os.getloadavg()
        self.results["elapsed_s"] = round(time.monotonic() - started, 1)
        (self.out / "compare.json").write_text(json.dumps(self.results, indent=1) + "\n")
        return self.results

    def profile(self, servers: dict[str, tuple[int, int | None]]) -> None:  # type: ignore[override]
        """Flame graphs (py-spy) of the floor and cliproxy, non-stream c64 and 256 streams."""
        py_dir = str(Path(self.args.python).parent)
        spy = shutil.which("py-spy", path=py_dir) or shutil.which("py-spy")
        if spy is None:
            log("--profile: py-spy not found beside --python nor on PATH; skipping")
            return
        targets = [
            ("floor", "floor", "openai"),
            ("cliproxy openai", "cliproxy", "openai"),
            ("cliproxy chat->claude", "cliproxy", "chat2claude"),
        ]
        profiles: dict[str, Any] = {}
        for kind, conc in (("nonstream", 64), ("stream", 256)):
            leg = f"{kind}-c{conc}"
            for target, server, flavour in targets:
                port, pid = servers[server]
                assert pid is not None
                name = f"{leg}-{target.replace(' ', '-').replace('>', '')}"
                log(f"profiling {target} {leg} with py-spy -> flame-{name}.svg")
                pc = self.args.per_conn_256
                res, raw, svg = flame.record(
                    spy,
                    pid,
                    self.out,
                    name,
                    functools.partial(self.leg, kind, conc, port, pid, flavour, pc),
                )
                if not raw.exists():
                    log(f"py-spy wrote no {raw.name}; see py-spy-{name}-raw.log")
                    continue
                profiles[name] = {
                    "leg": leg,
                    "target": target,
                    "cpu_us_per": res.get("cpu_us_per"),
                    "other_pct": res.get("other_pct"),
                    "svg": svg.name,
                    "summary": flame.summarize(raw),
                }
        self.results["profiles"] = profiles
        text = flame.render(profiles)
        (self.out / "flame.md").write_text(text)
        log(f"flame graphs and raw stacks in {self.out}; text rendering in flame.md")


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


#: issue 17's targets: (what, limit, [(leg, column)], figure index: 0 headline, 1 CPU)
def targets(columns: list[str]) -> list[tuple[str, float, list[tuple[str, str]], int]]:
    same = [c for c in ("cliproxy openai", "cliproxy claude") if c in columns]
    tr = [c for c in ("cliproxy chat->claude",) if c in columns]
    ns = ("nonstream-c1", "nonstream-c64")
    st = ("stream-c1", "stream-c256")
    allc = same + tr
    return [
        ("CPU per same-format non-stream request", 1.2, [(leg, c) for c in same for leg in ns], 1),
        ("CPU per translated (Chat->Claude) request", 1.5, [(leg, c) for c in tr for leg in ns], 1),
        ("CPU per stream", 1.3, [(leg, c) for c in allc for leg in st], 1),
        ("256-stream TTFB p50", 1.1, [("stream-c256", c) for c in allc], 0),
    ]


def ratios(results: dict[str, Any], leg: str, col: str, i: int) -> list[float | None]:
    by_col = results["legs"].get(leg, {})
    base = dict(results["columns"]).get(col)
    if col not in by_col or base not in by_col:
        return []
    kind = leg.split("-")[0]
    mine = [figure(r, kind, i) for r in by_col[col]]
    floor = [figure(r, kind, i) for r in by_col[base]]
    return [m / f if m is not None and f else None for m, f in zip(mine, floor, strict=False)]


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def targets_block(results: dict[str, Any]) -> list[str]:
    """Met / not met per target of issue 17, from the medians (nothing asserted)."""
    cols = [c for c, _ in results["columns"]]
    lines = [
        "### Targets (issue 17, item 2): medians of the per-repetition ratios to the floor",
        "",
        "| target | leg | cliproxy | ratio to the floor | limit | met |",
        "|---|---|---|---|---|---|",
    ]
    for what, limit, cells, i in targets(cols):
        for leg, col in cells:
            rs = ratios(results, leg, col, i)
            med = median(rs)
            met = "—" if med is None else ("met" if med <= limit else "**not met**")
            lines.append(
                f"| {what} | {leg} | {col.removeprefix('cliproxy ')} | {spread(rs, 'x')} | "
                f"≤ {limit}x | {met} |"
            )
    for col in [c for c in cols if c.startswith("cliproxy") and "workers" not in c]:
        runs = results["legs"].get("stream-c256", {}).get(col, [])
        mb = [r.get("peak_rss_kb", 0) / 1024 for r in runs if r.get("peak_rss_kb")]
        if mb:
            met = "met" if max(mb) <= 100 else "**not met**"
            lines.append(
                f"| peak RSS under 256 streams | stream-c256 | {col.removeprefix('cliproxy ')} | "
                f"{spread(list(mb), ' MB')} (absolute) | ≤ 100 MB | {met} |"
            )
    return lines + [""]


def workers_block(results: dict[str, Any]) -> list[str]:
    """1 against 2 workers (same-format OpenAI), with the other load of their legs."""
    legs = results["legs"]
    if W2 not in legs.get("nonstream-c64", {}):
        return []
    lines = [
        "### Workers: 1 against 2 (same-format OpenAI)",
        "",
        "| leg | figure | 1 worker | 2 workers | 2 / 1 (per repetition) | "
        "cliproxy cores used, 1 / 2 | other load (cores), 1 / 2 |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("nonstream-c64", "req/s", lambda r: r.get("rps")),
        ("nonstream-c64", "CPU µs per request", lambda r: r.get("cpu_us_per")),
        ("stream-c256", "TTFB p50 ms", lambda r: r.get("ttfb_ms", {}).get("p50")),
        ("stream-c256", "streams/s", lambda r: r.get("streams_per_s")),
        ("stream-c256", "CPU µs per stream", lambda r: r.get("cpu_us_per")),
    ]
    for leg, what, get in rows:
        one = [get(r) for r in legs[leg]["cliproxy openai"]]
        two = [get(r) for r in legs[leg][W2]]
        rat = [b / a if a and b is not None else None for a, b in zip(one, two, strict=False)]
        cores = [
            spread([r.get("cpu_pct", 0) / 100 for r in legs[leg][c]])
            for c in ("cliproxy openai", W2)
        ]
        other = [
            spread([r.get("other_pct", 0) / 100 for r in legs[leg][c]])
            for c in ("cliproxy openai", W2)
        ]
        lines.append(
            f"| {leg} | {what} | {spread(one)} | {spread(two)} | {spread(rat, 'x')} | "
            f"{cores[0]} / {cores[1]} | {other[0]} / {other[1]} |"
        )
    nginx = spread([r.get("nginx_user_pct", 0) / 100 for r in legs["nonstream-c64"][W2]])
    client = spread([r.get("client_user_pct", 0) / 100 for r in legs["nonstream-c64"][W2]])
    lines += [
        "",
        f"In the 2-worker non-stream c64 leg nginx used {nginx} cores and wrk {client} "
        "(user time) on the same 2 cores.",
        "",
    ]
    return lines


def report(results: dict[str, Any]) -> str:
    reps = results.get("reps", 1)
    m = results.get("machine", {})
    lines = [
        f"`{results.get('command', 'bench/run --compare')}` on {results.get('date', '?')}, "
        f"commit {m.get('commit', '?')}, {m.get('cores', '?')} cores ({m.get('cpu', '?')}), "
        f"Python {m.get('python_version', '?')}, Twisted {m.get('twisted', '?')}"
        + (f", LiteLLM {results['litellm_version']}" if results.get("litellm_version") else "")
        + f"; {results.get('elapsed_s', '?')} s.",
        "",
    ]
    if reps:
        lines += [
            f"Medians of {reps} alternating repetitions, [min–max] across them. A ratio is "
            "taken within each repetition (cliproxy / floor of that repetition), then its "
            "median. *other* = cores' worth of user CPU used by other processes during the "
            "cliproxy leg (median): above ~0.2 the absolute figures are disturbed.",
            "",
            "| leg | cliproxy | figure | direct | floor | cliproxy | cliproxy / floor | other |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for leg, by_col in results["legs"].items():
        kind = leg.split("-")[0]
        what = "req/s" if kind == "nonstream" else "TTFB p50 ms"
        for col, base in results["columns"]:
            if col not in by_col:
                continue
            flav = base.split()[-1]
            for i, label in enumerate((what, "CPU µs each")):
                mine = [figure(r, kind, i) for r in by_col[col]]
                floor = [figure(r, kind, i) for r in by_col[base]]
                direct = [figure(r, kind, i) for r in by_col[f"direct {flav}"]] if i == 0 else []
                other = spread([r.get("other_pct", 0) / 100 for r in by_col[col]])
                rs = spread(ratios(results, leg, col, i), "x")
                lines.append(
                    f"| {leg} | {col.removeprefix('cliproxy ')} | {label} | {spread(direct)} | "
                    f"{spread(floor)} | {spread(mine)} | {rs} | {other} |"
                )
    if reps:
        c256 = results["legs"].get("stream-c256", {})
        peaks = {
            col: max(r.get("peak_rss_kb", 0) for r in c256.get(col, [{}]))
            for col in [c for c, _ in results["columns"]] + ["floor openai"]
        }
        lines += ["", "Peak RSS in the 256-stream leg (VmHWM, largest process, largest rep): "]
        lines[-1] += ", ".join(f"{c} {kb / 1024:.1f} MB" for c, kb in peaks.items() if kb)
        errs = [
            f"{leg} {col}: {sum(r.get('errors') or 0 for r in runs)}"
            for leg, by_col in results["legs"].items()
            for col, runs in by_col.items()
            if any(r.get("errors") for r in runs)
        ]
        if errs:
            lines += ["", "Errors (requests or streams that failed): " + "; ".join(errs)]
        every = [
            r.get("other_pct", 0) / 100
            for by_col in results["legs"].values()
            for runs in by_col.values()
            for r in runs
        ]
        lines += [
            "",
            f"Other load over all legs: {spread(list(every))} cores (2 cores in all); before "
            f"the start {results.get('other_load_before_cores', '?')} cores.",
        ]
        la0, la1 = results.get("loadavg_start"), results.get("loadavg_end")
        if la0 and la1:
            lines[-1] += f" Load average at start {la0[0]:.2f}, at the end {la1[0]:.2f}."
        lines += ["", *targets_block(results), *workers_block(results)]
    if results.get("profiles"):
        lines += ["## Flame graphs (py-spy)", "", flame.render(results["profiles"])]
    return "\n".join(lines) + "\n"
