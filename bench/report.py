"""The Markdown report of bench/run."""

from __future__ import annotations

from typing import Any

from fake import CHUNK_GAP_S, CHUNKS, TARGETS


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
