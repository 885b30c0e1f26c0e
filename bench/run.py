#!/usr/bin/env python3
"""Benchmark cliproxy against a fake OpenAI-compatible upstream, in one command.

    bench/run [--python /path/to/python] [--duration 10] [--profile] [--quick]

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
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLIENT_KEY = "bench-client-key-7f3a"
UPSTREAM_KEY = "bench-upstream-key-91c2"
MODEL = "bench-model"
CHUNKS = 20
CHUNK_GAP_S = 0.010
ECHO_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
#: more CPU than this (in cores) used by other processes makes a run noisy
QUIET_CORES = 0.15
TARGETS = {
    "nonstream_c64_rps": 1000.0,
    "stream256_added_ttfb_p50_ms": 50.0,
    "stream256_total_ratio": 1.2,
    "peak_rss_mb": 100.0,
}

# -- canned upstream bodies -------------------------------------------------------------
# Kept free of ' \ and $ so they can sit in nginx single-quoted strings as they are.

CHAT_COMPLETION = {
    "id": "chatcmpl-bench0001",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! This is a canned answer from the benchmark fake upstream.",
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 14, "total_tokens": 26},
}

WORDS = (
    "Hello there, this is a streamed answer from the fake upstream, one small "
    "piece at a time, like a real model."
).split(" ")


def sse_chunks() -> list[str]:
    """The 20 `data:` payloads of the canned stream (text, then finish, then usage)."""
    base = {
        "id": "chatcmpl-bench0002",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
    }
    out = []
    n_text = CHUNKS - 2
    for i in range(n_text):
        delta: dict[str, Any] = {"content": WORDS[i % len(WORDS)] + " "}
        if i == 0:
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        out.append(json.dumps({**base, "choices": [choice]}, separators=(",", ":")))
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    out.append(json.dumps({**base, "choices": [finish]}, separators=(",", ":")))
    usage = {"prompt_tokens": 12, "completion_tokens": n_text, "total_tokens": 12 + n_text}
    out.append(json.dumps({**base, "choices": [], "usage": usage}, separators=(",", ":")))
    return out


def request_body(stream: bool) -> bytes:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
        "stream": stream,
    }
    return json.dumps(body).encode()


# -- tools ------------------------------------------------------------------------------


def echo_module() -> str | None:
    for d in ECHO_MODULE_DIRS:
        p = Path(d, "ngx_http_echo_module.so")
        if p.exists():
            return str(p)
    return None


def ensure_tools(install: bool) -> None:
    """nginx with the echo module, and wrk; apt-get installs them when we are root."""

    def missing() -> list[str]:
        m = []
        if not shutil.which("nginx") or echo_module() is None:
            m.append("nginx-light")  # depends on libnginx-mod-http-echo
        if not shutil.which("wrk"):
            m.append("wrk")
        return m

    need = missing()
    if not need:
        return
    how = f"apt-get install -y {' '.join(need)}"
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"bench: missing {', '.join(need)}; install with:  sudo {how}")
    log(f"installing {' '.join(need)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *need]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    if missing():
        sys.exit(f"bench: still missing {', '.join(missing())} after apt-get")
    log("note: apt may have enabled the system nginx service; the bench does not use it")


# -- processes --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, logfile: Path, limit: float = 30):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else ""
            sys.exit(f"bench: {what} exited with {proc.returncode}; log {logfile}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    sys.exit(f"bench: {what} did not answer {url} within {limit:.0f}s; see {logfile}")


def nginx_config(out: Path, port: int) -> str:
    chunks = sse_chunks()
    lines = []
    for i, c in enumerate(chunks):
        tail = "\\n\\n"
        if i == len(chunks) - 1:
            tail += "data: [DONE]\\n\\n"
        lines.append(f"            echo -n 'data: {c}{tail}';")
        lines.append("            echo_flush;")
        if i != len(chunks) - 1:
            lines.append(f"            echo_sleep {CHUNK_GAP_S};")
    stream = "\n".join(lines)
    body = json.dumps(CHAT_COMPLETION, separators=(",", ":"))
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    tmp = out / "nginx-tmp"
    return f"""# generated by bench/run.py
load_module {echo_module()};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {out}/nginx.pid;
error_log {out}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        # cliproxy asks for a stream with Accept: text/event-stream
        location = /v1/chat/completions {{
            if ($http_accept ~* "event-stream") {{ rewrite ^ /_sse last; }}
            default_type application/json;
            return 200 '{body}';
        }}
        location = /_sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
{stream}
        }}
        location = /v1/models {{
            default_type application/json;
            return 200 '{models}';
        }}
        location = /healthz {{ return 200 'ok'; }}
    }}
}}
"""


def cliproxy_config(out: Path, port: int, upstream_port: int) -> str:
    return f"""# generated by bench/run.py
host: "127.0.0.1"
port: {port}
api-keys: ["{CLIENT_KEY}"]
auth-dir: "{out}/auth"
openai-compatibility:
  - name: bench
    base-url: "http://127.0.0.1:{upstream_port}/v1"
    api-key-entries:
      - api-key: "{UPSTREAM_KEY}"
    models:
      - name: "{MODEL}"
        alias: "{MODEL}"
"""


class Proc:
    """/proc readings for one pid: CPU seconds, RSS, peak RSS (VmHWM)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds: utime and stime of /proc/<pid>/stat."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0, 0.0
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) / self.TICK, int(fields[12]) / self.TICK

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0), so each scenario has its own."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False


def machine_cpu_s() -> tuple[float, float]:
    """(busy, user) CPU seconds of the whole machine (all cores) since boot."""
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
    return busy / Proc.TICK, (vals[0] + vals[1]) / Proc.TICK  # user + nice


def machine_busy_s() -> float:
    return machine_cpu_s()[0]


def tcp_active_opens() -> int:
    """Machine-wide count of TCP connections opened (Tcp ActiveOpens in /proc/net/snmp)."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("Tcp:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(row.get("ActiveOpens", 0))
    return 0


def listen_overflows() -> int:
    """The kernel's count of connections dropped because an accept queue was full."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(row.get("ListenOverflows", 0))
    return 0


def children_cpu_s() -> tuple[float, float]:
    """(total, user) CPU seconds of our finished children (wrk, loadgen)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_utime


def other_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over `seconds` (we are idle meanwhile)."""
    b0 = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - b0) / seconds


def nginx_pids(master: int) -> list[int]:
    pids = [master]
    try:
        kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    return pids


def usage_of_direct(u: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "wall_s",
        "nginx_cpu_pct",
        "client_cpu_pct",
        "other_cpu_pct",
        "listen_overflows",
        "tcp_connects",
    )
    return {k: u[k] for k in keep}


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
        env = {**os.environ, "PYTHONPATH": str(REPO)}
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

    def post(self, port: int, stream: bool) -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=request_body(stream),
            headers={
                "Authorization": f"Bearer {CLIENT_KEY}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
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

    def body_file(self, stream: bool) -> Path:
        p = self.out / ("body-stream.json" if stream else "body.json")
        if not p.exists():
            p.write_bytes(request_body(stream))
        return p

    def wrk(self, port: int, conc: int, duration: float) -> dict[str, Any]:
        env = {**os.environ, "BENCH_BODY_FILE": str(self.body_file(False)), "BENCH_KEY": CLIENT_KEY}
        cmd = [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "post.lua"),
            f"http://127.0.0.1:{port}/v1/chat/completions",
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

    def streams(self, port: int, conc: int, per_conn: int) -> dict[str, Any]:
        cmd = [
            sys.executable,
            str(BENCH / "loadgen.py"),
            "--port",
            str(port),
            "--key",
            CLIENT_KEY,
            "--body-file",
            str(self.body_file(True)),
            "--concurrency",
            str(conc),
            "--per-conn",
            str(per_conn),
            "--ramp",
            str(self.args.ramp),
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

    def profile(self) -> None:
        """Extra proxy-only legs under py-spy (after the measured ones, so they stay clean)."""
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(self.args.python).parent)
        )
        if spy is None:
            log("--profile: py-spy not found (pip install py-spy); skipping")
            return
        legs = [
            ("nonstream-c64", lambda: self.wrk(self.px_port, 64, self.args.duration)),
            ("stream-c256", lambda: self.streams(self.px_port, 256, self.args.per_conn_256)),
        ]
        self.results["profiles"] = {}
        for name, leg in legs:
            raw = self.out / f"profile-{name}.txt"
            log(f"profiling {name} with py-spy -> {raw}")
            spy_cmd = [spy, "record", "--nonblocking", "-r", "250", "-f", "raw", "-o", str(raw)]
            p = subprocess.Popen(
                [*spy_cmd, "-p", str(self.cliproxy.pid)],
                stdout=subprocess.DEVNULL,
                stderr=open(self.out / f"py-spy-{name}.log", "wb"),
            )
            time.sleep(1.0)  # let py-spy attach
            leg()
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
            if raw.exists():
                self.results["profiles"][name] = summarize_profile(raw)

    def run(self) -> dict[str, Any]:
        a = self.args
        started = time.time()
        self.results["machine"] = machine(a.python)
        self.results["command"] = " ".join(["bench/run", *sys.argv[1:]])
        self.results["label"] = a.label
        self.results["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        load = other_load()
        waited = 0.0
        while load > QUIET_CORES and waited < a.wait_quiet:
            log(f"machine busy ({load:.2f} cores used by others); waiting for it to calm down")
            time.sleep(4)
            waited += 5
            load = other_load()
        self.results["other_load_before_cores"] = round(load, 2)
        if load > QUIET_CORES:
            log(f"warning: other processes use {load:.2f} cores; figures will be disturbed")
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
            if a.profile:
                self.profile()
        finally:
            self.stop()
        self.results["elapsed_s"] = round(time.time() - started, 1)
        return self.results


# -- report -----------------------------------------------------------------------------


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


def machine(python: str) -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "kernel": platform.release()}
    cpuinfo = Path("/proc/cpuinfo").read_text()
    info["cpu"] = next(
        (x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")),
        platform.processor() or "?",
    )
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    info["ram_gb"] = round(int(mem[1]) / 1024 / 1024, 1)
    probe = (
        "import sys, twisted, treq, yaml; "
        "print(sys.version.split()[0], twisted.__version__, treq.__version__, yaml.__version__)"
    )
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    parts = r.stdout.split() if r.returncode == 0 else ["?"] * 4
    info.update(
        python=python, python_version=parts[0], twisted=parts[1], treq=parts[2], pyyaml=parts[3]
    )
    info["harness_python"] = sys.version.split()[0]
    ngv = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    info["nginx"] = ngv.split("/")[-1]
    wrkv = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    info["wrk"] = wrkv[1] if len(wrkv) > 1 else "?"
    git = ["git", "-C", str(REPO)]
    g = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    info["commit"] = g.stdout.strip() or "? (not a git checkout)"
    if g.returncode == 0:
        st = ["status", "--porcelain", "--", "cliproxy", "twisted"]
        dirty = subprocess.run([*git, *st], capture_output=True, text=True).stdout.strip()
        if dirty:
            info["commit"] += " plus uncommitted changes in cliproxy/"
    return info


def fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def pair(a: Any, b: Any, nd: int = 1, unit: str = "") -> str:
    return f"{fmt(a, nd)}{unit} / {fmt(b, nd)}{unit}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def nonstream_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in res["scenarios"]:
        if s["kind"] != "nonstream":
            continue
        d, p = s["direct"], s["proxy"]
        per_req_us = 1e6 * p["cliproxy_cpu_s"] / p["requests"] if p["requests"] else None
        rows.append(
            [
                str(s["concurrency"]),
                pair(d["rps"], p["rps"], 0),
                ratio(p["rps"], d["rps"]),
                pair(d["p50_ms"], d["p99_ms"], 2),
                pair(p["p50_ms"], p["p99_ms"], 2),
                fmt(p["p50_ms"] - d["p50_ms"], 2),
                pair(d["errors"], p["errors"]),
                f"{fmt(p['cliproxy_cpu_pct'])}%",
                fmt(per_req_us, 0),
                pair(d["nginx_cpu_pct"], p["nginx_cpu_pct"], 1, "%"),
                pair(d["client_cpu_pct"], p["client_cpu_pct"], 1, "%"),
                pair(d["other_cpu_pct"], p["other_cpu_pct"], 1, "%"),
                pair(d["listen_overflows"], p["listen_overflows"]),
            ]
        )
    return rows


def stream_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in res["scenarios"]:
        if s["kind"] != "stream":
            continue
        d, p = s["direct"], s["proxy"]
        dt, pt, dtot, ptot = d["ttfb_ms"], p["ttfb_ms"], d["total_ms"], p["total_ms"]
        added = (pt.get("p50") or 0) - (dt.get("p50") or 0)
        rows.append(
            [
                str(s["concurrency"]),
                pair(d["streams"], p["streams"], 0),
                pair(dt.get("p50"), dt.get("p99"), 2),
                pair(pt.get("p50"), pt.get("p99"), 2),
                fmt(added, 2),
                pair(dtot.get("p50"), dtot.get("p99")),
                pair(ptot.get("p50"), ptot.get("p99")),
                f"{ratio(ptot.get('p50'), dtot.get('p50'))} / "
                f"{ratio(ptot.get('p99'), dtot.get('p99'))}",
                pair(d["errors"], p["errors"], 0),
                f"{fmt(p['cliproxy_cpu_pct'])}%",
                pair(d["nginx_cpu_pct"], p["nginx_cpu_pct"], 1, "%"),
                pair(d["loadgen_cpu_pct"], p["loadgen_cpu_pct"], 1, "%"),
                pair(d["other_cpu_pct"], p["other_cpu_pct"], 1, "%"),
                pair(d["listen_overflows"], p["listen_overflows"]),
            ]
        )
    return rows


def process_row(s: dict[str, Any]) -> list[str]:
    p = s["proxy"]
    n = p["requests"] if s["kind"] == "nonstream" else p["streams"]
    return [
        s["name"],
        str(n),
        pair(p["cliproxy_user_s"], p["cliproxy_sys_s"], 2),
        fmt(p["cliproxy_cpu_pct"]),
        fmt(1e6 * p["cliproxy_cpu_s"] / n, 0) if n else "-",
        pair(s["direct"]["tcp_connects"], p["tcp_connects"]),
        fmt(p["cliproxy_peak_rss_kb"] / 1024),
    ]


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    mb = 1024
    out = [
        f"## Run {res['date']}",
        "",
        f"- command: `{res['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Linux {m['kernel']}",
        f"- cliproxy: {m['python']} (Python {m['python_version']}, Twisted {m['twisted']}, "
        f"treq {m['treq']}, PyYAML {m['pyyaml']}), commit {m['commit']}"
        + (f" ({res['label']})" if res.get("label") else ""),
        f"- fake upstream nginx {m['nginx']} (1 worker, echo module); wrk {m['wrk']} "
        f"(1 thread); stream client bench/loadgen.py on Python {m['harness_python']}",
        f"- whole run {res['elapsed_s']} s; other processes used "
        f"{res['other_load_before_cores']} cores just before it",
        "- *other load*: user CPU (% of one core) used during a leg by everything but "
        "cliproxy, nginx and the load generator; high values mean the leg was disturbed",
        "- *listen overflows*: connections the kernel dropped because an accept queue was "
        "full (TcpExt ListenOverflows, machine-wide); each costs the client a ~1 s retransmit",
        "",
        "### Non-stream (wrk, closed loop, fixed duration)",
        "",
    ]
    out += table(
        [
            "concurrency",
            "req/s direct / proxy",
            "proxy/direct",
            "direct p50 / p99 ms",
            "proxy p50 / p99 ms",
            "added p50 ms",
            "errors direct / proxy",
            "cliproxy CPU",
            "cliproxy CPU µs/req",
            "nginx CPU direct / proxy",
            "wrk CPU direct / proxy",
            "other load direct / proxy",
            "listen overflows direct / proxy",
        ],
        nonstream_rows(res),
    )
    out += [
        "",
        f"### Streams ({CHUNKS} chunks {CHUNK_GAP_S * 1000:g} ms apart; "
        "TTFB = first `data:` bytes)",
        "",
    ]
    out += table(
        [
            "streams",
            "count direct / proxy",
            "direct TTFB p50 / p99 ms",
            "proxy TTFB p50 / p99 ms",
            "added TTFB p50 ms",
            "direct total p50 / p99 ms",
            "proxy total p50 / p99 ms",
            "total ratio p50 / p99",
            "errors direct / proxy",
            "cliproxy CPU",
            "nginx CPU direct / proxy",
            "loadgen CPU direct / proxy",
            "other load direct / proxy",
            "listen overflows direct / proxy",
        ],
        stream_rows(res),
    )
    out += ["", "### cliproxy process", ""]
    out += table(
        [
            "scenario (proxy leg)",
            "requests",
            "CPU s user / sys",
            "CPU % of one core",
            "CPU µs per request",
            "TCP connects direct / proxy",
            "peak RSS MB",
        ],
        [process_row(s) for s in res["scenarios"]],
    )
    out += [
        "",
        f"RSS after start {fmt(res['cliproxy_rss_idle_kb'] / mb)} MB, at the end "
        f"{fmt(res['cliproxy_rss_end_kb'] / mb)} MB, peak "
        f"{fmt(res['cliproxy_peak_rss_kb'] / mb)} MB (VmHWM); CPU time over the measured "
        f"scenarios {res['cliproxy_cpu_s_total']} s (utime+stime). *TCP connects*: "
        "connections opened machine-wide during the leg (the client's, plus cliproxy's "
        "to the upstream on the proxy leg).",
        "",
        "### Targets (measured, not asserted)",
        "",
    ]
    out += table(["target", "measured", "met"], targets(res))
    for name, prof in res.get("profiles", {}).items():
        out += [
            "",
            f"### py-spy: {name} ({prof['samples']} busy samples; {prof['idle_samples']} idle "
            f"left out; thread pool {prof['thread_pool_pct']}%)",
        ]
        for key, title in (
            ("phases", "Where the busy time went"),
            ("self", "Top self time (leaf frame)"),
            ("cliproxy", "cliproxy frames, inclusive"),
            ("inclusive", "Any function, inclusive"),
        ):
            out += ["", f"{title}:", ""]
            out += [f"- {pct}% `{frame}`" for frame, _, pct in prof[key]]
    return "\n".join(out) + "\n"


def targets(res: dict[str, Any]) -> list[list[str]]:
    by = {s["name"]: s for s in res["scenarios"]}
    rows = []
    c64 = by.get("nonstream-c64")
    if c64:
        v = c64["proxy"]["rps"]
        t = TARGETS["nonstream_c64_rps"]
        rows.append([f"non-stream c64 >= {t:g} req/s", f"{v:.0f} req/s", yn(v >= t)])
    s256 = by.get("stream-c256")
    if s256:
        d, p = s256["direct"], s256["proxy"]
        added = p["ttfb_ms"]["p50"] - d["ttfb_ms"]["p50"]
        t = TARGETS["stream256_added_ttfb_p50_ms"]
        rows.append([f"256 streams: added TTFB p50 < {t:g} ms", f"{added:.1f} ms", yn(added < t)])
        r = p["total_ms"]["p50"] / d["total_ms"]["p50"]
        t = TARGETS["stream256_total_ratio"]
        rows.append([f"256 streams: total time p50 <= {t:g}x direct", f"{r:.2f}x", yn(r <= t)])
        r99 = p["total_ms"]["p99"] / d["total_ms"]["p99"]
        rows.append([f"(same, p99) <= {t:g}x direct", f"{r99:.2f}x", yn(r99 <= t)])
    peak = res["cliproxy_peak_rss_kb"] / 1024
    t = TARGETS["peak_rss_mb"]
    rows.append([f"peak RSS < {t:g} MB", f"{peak:.1f} MB", yn(peak < t)])
    return rows


def yn(ok: bool) -> str:
    return "yes" if ok else "**no**"


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
    p.add_argument("--profile", action="store_true", help="then profile cliproxy with py-spy")
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
        help="direct, the stock Twisted floor and cliproxy with 1 and 2 workers (compare.py)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.per_conn_16, args.per_conn_256 = 2.0, 4, 2
    if not sys.platform.startswith("linux"):
        sys.exit("bench: needs Linux (/proc)")
    args.python = shutil.which(args.python) or args.python
    ensure_tools(install=not args.no_install)
    if args.compare:
        from compare import Compare
        from compare import report as compare_report

        cmp = Compare(args)
        text = compare_report(cmp.run_compare())
        (cmp.out / "compare.md").write_text(text)
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
