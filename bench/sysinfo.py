"""Tools, processes and /proc readings for bench/run."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fake import REPO, echo_module

# -- tools ------------------------------------------------------------------------------


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


def pythonpath() -> str:
    """This checkout first, then the caller's PYTHONPATH (e.g. a directory whose
    `orjson.py` raises ImportError, to measure cliproxy without orjson)."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


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


def kernel_counter(path: str, table: str, key: str) -> int:
    """One counter of /proc/net/snmp or /proc/net/netstat (header line, value line)."""
    lines = Path(path).read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith(table + ":"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(row.get(key, 0))
    return 0


def tcp_active_opens() -> int:
    """Machine-wide count of TCP connections opened (Tcp ActiveOpens in /proc/net/snmp)."""
    return kernel_counter("/proc/net/snmp", "Tcp", "ActiveOpens")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because an accept queue was full."""
    return kernel_counter("/proc/net/netstat", "TcpExt", "ListenOverflows")


def children_cpu_s() -> tuple[float, float]:
    """(total, user) CPU seconds of our finished children (wrk, loadgen)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_utime


def other_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over `seconds` (we are idle meanwhile)."""
    b0 = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - b0) / seconds


def wait_quiet(limit: float, quiet: float) -> float:
    """Wait up to `limit` seconds for other processes to use under `quiet` cores.

    Returns the last reading (cores used by others); logs a warning when it never got quiet.
    """
    load = other_load()
    waited = 0.0
    while load > quiet and waited < limit:
        log(f"machine busy ({load:.2f} cores used by others); waiting for it to calm down")
        time.sleep(4)
        waited += 5
        load = other_load()
    if load > quiet:
        log(f"warning: other processes use {load:.2f} cores; figures will be disturbed")
    return load


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
