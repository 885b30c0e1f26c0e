#!/usr/bin/env python3
"""Benchmark cliproxy against a fake OpenAI-compatible upstream, in one command.

    bench/run [--python /path/to/python] [--duration 10] [--quick]
    bench/run --compare [--reps 5] [--compare-workers] [--profile] [--litellm-python PY]

What runs (loopback only, each in its own process):
- nginx (with Debian's echo module) as the fake upstream: a canned chat.completion for
  non-stream requests and a 20-chunk SSE stream, 10 ms between chunks, for streams;
- cliproxy as a real twistd daemon, with one `openai-compatibility` provider pointing
  at nginx and a client API key;
- wrk for non-stream throughput and latency; bench/loadgen.py (asyncio) for streams.

Every scenario is run straight to nginx ("direct") and through cliproxy ("proxy") in
the same run. cliproxy's CPU time and peak RSS come from /proc. The harness itself
uses only the standard library; --python picks the interpreter that runs cliproxy.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fake import (
    BENCH,
    CHAT_COMPLETION,
    CHUNK_GAP_S,
    CHUNKS,
    CLIENT_KEY,
    FLAVOURS,
    QUIET_CORES,
    cliproxy_config,
    nginx_config,
    request_body,
)
from report import report
from sysinfo import (
    Proc,
    children_cpu_s,
    ensure_tools,
    free_port,
    listen_overflows,
    log,
    machine,
    machine_cpu_s,
    nginx_pids,
    pythonpath,
    tcp_active_opens,
    usage_of_direct,
    wait_http,
    wait_quiet,
)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out = Path(args.out or BENCH / "out" / stamp).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.results: dict[str, Any] = {"scenarios": []}

    # -- lifecycle ----------------------------------------------------------------------

    def start_nginx(self) -> None:
        self.up_port = free_port()
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.out / "nginx-tmp" / d).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # workers run as nobody and must reach the temp dirs
            for p in [self.out / "nginx-tmp", *(self.out / "nginx-tmp").iterdir()]:
                os.chmod(p, 0o777)
        conf = self.out / "nginx.conf"
        conf.write_text(nginx_config(self.out, self.up_port))
        logf = self.out / "nginx-error.log"
        cmd = ["nginx", "-p", str(self.out), "-e", str(logf), "-c", str(conf)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(logf, "ab"))
        self.procs.append(p)
        self.nginx = p
        wait_http(f"http://127.0.0.1:{self.up_port}/healthz", p, "nginx", logf)
        log(f"nginx (fake upstream) on 127.0.0.1:{self.up_port}, pid {p.pid}")

    def start_cliproxy(self) -> None:
        self.px_port = free_port()
        conf = self.out / "cliproxy.yaml"
        conf.write_text(cliproxy_config(self.out, self.px_port, self.up_port))
        logf = self.out / "cliproxy.log"
        env = {**os.environ, "PYTHONPATH": pythonpath(), "CLIPROXY_LOCAL_MODEL": "1"}
        cmd = [
            self.args.python,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "cliproxy",
            "--config",
            str(conf),
        ]
        self.cliproxy_cmd = cmd
        p = subprocess.Popen(
            cmd, cwd=self.out, env=env, stdout=open(logf, "wb"), stderr=subprocess.STDOUT
        )
        self.procs.append(p)
        self.cliproxy = p
        self.px = Proc(p.pid)
        wait_http(f"http://127.0.0.1:{self.px_port}/healthz", p, "cliproxy", logf)
        self.results["cliproxy_rss_idle_kb"] = self.px.status_kb("VmRSS")
        log(f"cliproxy on 127.0.0.1:{self.px_port}, pid {p.pid}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # -- checks -------------------------------------------------------------------------

    def post(self, port: int, stream: bool, flavour: str = "openai") -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{FLAVOURS[flavour][0]}",
            data=request_body(stream, flavour),
            headers={
                "Authorization": f"Bearer {CLIENT_KEY}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:  # callgrind is slow
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def smoke(self) -> None:
        """One request of each kind each way; stop early with the body if it is wrong."""
        want = CHAT_COMPLETION["choices"][0]["message"]["content"]
        for name, port in (("direct", self.up_port), ("proxy", self.px_port)):
            status, body = self.post(port, False)
            ok = status == 200 and json.loads(body)["choices"][0]["message"]["content"] == want
            if not ok:
                sys.exit(f"bench: {name} non-stream answer is wrong: {status} {body[:500]!r}")
            status, body = self.post(port, True)
            events = body.count(b"data:")
            if status != 200 or b"data: [DONE]" not in body or events < CHUNKS:
                sys.exit(f"bench: {name} stream is wrong: {status} {events} events {body[:500]!r}")
            self.results[f"events_per_stream_{name}"] = events
        log("smoke requests OK (direct and through cliproxy, stream and non-stream)")

    # -- load ---------------------------------------------------------------------------

    def body_file(self, stream: bool, flavour: str = "openai") -> Path:
        p = self.out / f"body-{flavour}{'-stream' if stream else ''}.json"
        if not p.exists():
            p.write_bytes(request_body(stream, flavour))
        return p

    def wrk(self, port: int, conc: int, duration: float, flavour: str = "openai") -> dict[str, Any]:
        body = self.body_file(False, flavour)
        env = {**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_KEY": CLIENT_KEY}
        cmd = [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "post.lua"),
            f"http://127.0.0.1:{port}{FLAVOURS[flavour][0]}",
        ]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((x for x in r.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
        if line is None:
            sys.exit(f"bench: wrk failed ({r.returncode}): {r.stdout}\n{r.stderr}")
        raw = json.loads(line[len("BENCH_RESULT ") :])
        secs = raw["duration_us"] / 1e6
        lat = raw["latency_us"]
        errors = sum(raw["errors"].values())
        return {
            "requests": raw["requests"],
            "errors": errors,
            "error_detail": raw["errors"] if errors else None,
            "seconds": round(secs, 2),
            "rps": round(raw["requests"] / secs, 1),
            "p50_ms": round(lat["p50"] / 1000, 3),
            "p90_ms": round(lat["p90"] / 1000, 3),
            "p99_ms": round(lat["p99"] / 1000, 3),
            "max_ms": round(lat["max"] / 1000, 3),
        }

    def streams(
        self, port: int, conc: int, per_conn: int, flavour: str = "openai", timeout: float = 30.0
    ) -> dict[str, Any]:
        cmd = [
            sys.executable,
            str(BENCH / "loadgen.py"),
            "--port",
            str(port),
            "--path",
            FLAVOURS[flavour][0],
            "--key",
            CLIENT_KEY,
            "--body-file",
            str(self.body_file(True, flavour)),
            "--concurrency",
            str(conc),
            "--per-conn",
            str(per_conn),
            "--ramp",
            str(self.args.ramp),
            "--timeout",
            str(timeout),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench: loadgen failed ({r.returncode}): {r.stderr[-2000:]}")
        return json.loads(r.stdout)

    def measured(self, fn, *args) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one leg and report cliproxy's and nginx's CPU and cliproxy's peak RSS."""
        ng = [Proc(p) for p in nginx_pids(self.nginx.pid)]
        self.px.reset_peak()
        pu0, ps0 = self.px.cpu_split()
        ng0 = [p.cpu_split() for p in ng]
        (cl0, clu0), (_, mu0) = children_cpu_s(), machine_cpu_s()
        ov0, op0, t0 = listen_overflows(), tcp_active_opens(), time.monotonic()
        res = fn(*args)
        wall = time.monotonic() - t0
        pu1, ps1 = self.px.cpu_split()
        ng1 = [p.cpu_split() for p in ng]
        (cl1, clu1), (_, mu1) = children_cpu_s(), machine_cpu_s()
        px0, px1 = pu0 + ps0, pu1 + ps1
        ngu = sum(b[0] - a[0] for a, b in zip(ng0, ng1, strict=True))
        ngt = sum(sum(b) - sum(a) for a, b in zip(ng0, ng1, strict=True))
        # user time only: loopback TCP work lands in softirq time nobody is charged for
        ours_user = (pu1 - pu0) + ngu + (clu1 - clu0)
        usage = {
            "wall_s": round(wall, 2),
            "cliproxy_cpu_s": round(px1 - px0, 2),
            "cliproxy_user_s": round(pu1 - pu0, 2),
            "cliproxy_sys_s": round(ps1 - ps0, 2),
            "cliproxy_cpu_pct": round(100 * (px1 - px0) / wall, 1),
            "nginx_cpu_pct": round(100 * ngt / wall, 1),
            "client_cpu_pct": round(100 * (cl1 - cl0) / wall, 1),
            # user CPU used meanwhile by other processes: high values mean disturbed figures
            "other_cpu_pct": round(max(0.0, 100 * ((mu1 - mu0) - ours_user) / wall), 1),
            "listen_overflows": listen_overflows() - ov0,
            # the client's own connections plus, through the proxy, cliproxy's upstream ones
            "tcp_connects": tcp_active_opens() - op0,
            "cliproxy_peak_rss_kb": self.px.status_kb("VmHWM"),
        }
        return res, usage

    def nonstream(self, conc: int) -> None:
        d = self.args.duration
        log(f"non-stream, concurrency {conc}, {d:g}s each way")
        direct, du = self.measured(self.wrk, self.up_port, conc, d)
        proxy, pu = self.measured(self.wrk, self.px_port, conc, d)
        self.results["scenarios"].append(
            {
                "name": f"nonstream-c{conc}",
                "kind": "nonstream",
                "concurrency": conc,
                "direct": {**direct, **usage_of_direct(du)},
                "proxy": {**proxy, **pu},
            }
        )
        log(
            f"  direct {direct['rps']:.0f} req/s p50 {direct['p50_ms']:.2f} ms | "
            f"proxy {proxy['rps']:.0f} req/s p50 {proxy['p50_ms']:.2f} ms "
            f"p99 {proxy['p99_ms']:.2f} ms, cliproxy CPU {pu['cliproxy_cpu_pct']}%"
        )

    def stream(self, conc: int, per_conn: int) -> None:
        log(f"stream, {conc} concurrent streams x {per_conn} each way")
        direct, du = self.measured(self.streams, self.up_port, conc, per_conn)
        proxy, pu = self.measured(self.streams, self.px_port, conc, per_conn)
        self.results["scenarios"].append(
            {
                "name": f"stream-c{conc}",
                "kind": "stream",
                "concurrency": conc,
                "direct": {**direct, **usage_of_direct(du)},
                "proxy": {**proxy, **pu},
            }
        )
        log(
            f"  TTFB p50 direct {direct['ttfb_ms'].get('p50')} ms, proxy "
            f"{proxy['ttfb_ms'].get('p50')} ms | total p50 direct "
            f"{direct['total_ms'].get('p50')} ms, proxy {proxy['total_ms'].get('p50')} ms"
        )

    def run(self) -> dict[str, Any]:
        a = self.args
        started = time.time()
        self.results["machine"] = machine(a.python)
        self.results["command"] = " ".join(["bench/run", *sys.argv[1:]])
        self.results["label"] = a.label
        self.results["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        load = wait_quiet(a.wait_quiet, QUIET_CORES)
        self.results["other_load_before_cores"] = round(load, 2)
        try:
            self.start_nginx()
            self.start_cliproxy()
            cpu_start = self.px.cpu()
            self.smoke()
            log("warm-up")
            self.wrk(self.px_port, 16, 2)
            self.streams(self.px_port, 16, 2)
            self.streams(self.up_port, 16, 2)
            for conc in (1, 16, 64):
                self.nonstream(conc)
            self.stream(16, a.per_conn_16)
            self.stream(256, a.per_conn_256)
            peaks = [s["proxy"]["cliproxy_peak_rss_kb"] for s in self.results["scenarios"]]
            self.results["cliproxy_peak_rss_kb"] = max(peaks)
            self.results["cliproxy_cpu_s_total"] = round(self.px.cpu() - cpu_start, 2)
            self.results["cliproxy_rss_end_kb"] = self.px.status_kb("VmRSS")
        finally:
            self.stop()
        self.results["elapsed_s"] = round(time.time() - started, 1)
        return self.results


# -- report -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark cliproxy against an nginx fake upstream."
    )
    p.add_argument(
        "--python",
        default=os.environ.get("PYTHON", "python3"),
        help="interpreter that runs cliproxy (default: $PYTHON or python3)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per non-stream leg")
    p.add_argument("--per-conn-16", type=int, default=16, help="streams per connection at 16")
    p.add_argument("--per-conn-256", type=int, default=8, help="streams per connection at 256")
    p.add_argument(
        "--ramp",
        type=float,
        default=(CHUNKS - 1) * CHUNK_GAP_S,
        help="seconds over which stream connections start (default: one stream's length; "
        "0 starts them all at once)",
    )
    p.add_argument("--quick", action="store_true", help="short legs, to check the harness")
    p.add_argument(
        "--profile",
        action="store_true",
        help="flame graphs (py-spy) of the floor and cliproxy, non-stream c64 and 256 streams; "
        "after the --compare repetitions, or alone (flame.py)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for other processes to leave the CPUs idle",
    )
    p.add_argument("--label", default="", help="what code is under test, for the report")
    p.add_argument("--no-install", action="store_true", help="never run apt-get")
    p.add_argument("--out", help="directory for logs and results (default bench/out/<time>)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="direct, the stock Twisted floor and cliproxy in three flavours (compare.py)",
    )
    p.add_argument(
        "--icount",
        action="store_true",
        help="instructions per request/stream, floor and cliproxy under callgrind (icount.py)",
    )
    p.add_argument(
        "--treq-floor",
        action="store_true",
        help="--icount: also a bare treq relay (floor_treq.py), cliproxy's client without cliproxy",
    )
    p.add_argument("--reps", type=int, default=3, help="--compare: alternating repetitions")
    p.add_argument(
        "--compare-workers", action="store_true", help="--compare: add cliproxy with 2 workers"
    )
    p.add_argument(
        "--litellm-python",
        metavar="PY",
        help="--compare: interpreter that can `import litellm` (a venv outside the project) "
        "for the LiteLLM leg; default: --python when it can",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.per_conn_16, args.per_conn_256 = 2.0, 4, 2
    if not sys.platform.startswith("linux"):
        sys.exit("bench: needs Linux (/proc)")
    args.python = shutil.which(args.python) or args.python
    ensure_tools(install=not args.no_install)
    if args.profile and not args.compare and not args.icount:
        args.compare, args.reps = True, 0  # flame graphs only
    if args.icount or args.compare:
        import compare
        import icount

        mod = icount if args.icount else compare
        runner = icount.ICount(args) if args.icount else compare.Compare(args)
        results = runner.run_icount() if args.icount else runner.run_compare()
        text = mod.report(results)
        (runner.out / ("icount.md" if args.icount else "compare.md")).write_text(text)
        print(text)
        return 0
    bench = Bench(args)
    res = bench.run()
    text = report(res)
    (bench.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (bench.out / "report.md").write_text(text)
    print(text)
    log(f"results in {bench.out}/results.json and report.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
