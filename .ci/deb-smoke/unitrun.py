#!/usr/bin/python3
"""Run a systemd unit's ExecStart= the way systemd would, for CI machines without systemd.

`systemctl start` needs systemd as PID 1, which CI containers lack. This takes the unit
file itself and applies what decides whether a Python daemon survives in it: the
environment (EnvironmentFile=), WorkingDirectory=, UMask=, and the seccomp filters of
NoNewPrivileges=, SystemCallFilter= (expanded with `systemd-analyze syscall-filter`),
SystemCallErrorNumber=, SystemCallArchitectures=native, MemoryDenyWriteExecute=,
RestrictAddressFamilies= and LockPersonality=, with the rules systemd 252 uses.
Then it runs each ExecStartPre= (a failure ends the start, as systemd's does) and execs
ExecStart, so its PID becomes the daemon's (MAINPID). With Type=notify, $NOTIFY_SOCKET
from unitrun's own environment is passed on, as systemd passes its notification socket.

`--reload MAINPID` runs the ExecReload= commands in order instead, $MAINPID substituted,
stopping at the first failure: what `systemctl reload` does; its exit status is theirs.

Run it as the unit's User= (e.g. `runuser -u cliproxy -- unitrun.py UNIT --pidfile F`).
File-system sandboxing (ProtectSystem=, PrivateTmp=...) is not emulated; running as the
unprivileged user already keeps the daemon out of /etc, /usr and other users' files.

Usage: unitrun.py UNIT_FILE [--pidfile FILE] [--no-seccomp] [--reload MAINPID]
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import shlex
import socket
import subprocess
import sys

import seccomp

PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
AF_MAX = 46  # AF_MAX on Linux 6.x; families at or above it are refused as well


def read_service_section(path: str) -> list[tuple[str, str]]:
    """(key, value) pairs of [Service], in order, with continuation lines joined."""
    pairs: list[tuple[str, str]] = []
    section = None
    pending = ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = pending + raw.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                pairs.append((key.strip(), value.strip()))
    return pairs


def last(pairs: list[tuple[str, str]], key: str, default: str = "") -> str:
    values = [v for k, v in pairs if k == key]
    return values[-1] if values else default


def yes(value: str) -> bool:
    return value.lower() in ("1", "yes", "true", "on")


@functools.cache
def expand_group(name: str) -> frozenset[str]:
    """Syscall names of a `@group`, nested groups included (systemd's own tables)."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", name], check=True, capture_output=True, text=True
    ).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand_group(item) if item.startswith("@") else {item}
    return frozenset(names)


def expand(items: list[str]) -> set[str]:
    names: set[str] = set()
    for item in items:
        names |= expand_group(item) if item.startswith("@") else {item}
    return names


def environment(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """What systemd gives a system service, plus Environment= and EnvironmentFile=."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    for key, value in pairs:
        if key == "Environment":
            for item in shlex.split(value):
                k, _, v = item.partition("=")
                env[k] = v
        elif key == "EnvironmentFile":
            optional = value.startswith("-")
            path = value.lstrip("-")
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                if optional:
                    continue
                raise
            for line in lines:
                line = line.strip()
                if not line or line[0] in "#;" or "=" not in line:
                    continue
                k, _, v = line.partition("=")
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                    v = v[1:-1]
                env[k.strip()] = v
    return env


def load(filt: seccomp.SyscallFilter) -> None:
    # Every filter sets no_new_privs first (libseccomp's default), as NoNewPrivileges=yes does.
    filt.load()


def apply_seccomp(pairs: list[tuple[str, str]]) -> list[str]:
    """Load the unit's seccomp filters; returns what was applied, for the log."""
    applied = []
    if yes(last(pairs, "MemoryDenyWriteExecute")):
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        wx = PROT_WRITE | PROT_EXEC
        f.add_rule(eperm, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
        for name in ("mprotect", "pkey_mprotect"):
            f.add_rule(eperm, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        f.add_rule(eperm, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        load(f)
        applied.append("MemoryDenyWriteExecute")
    families = last(pairs, "RestrictAddressFamilies")
    if families and not families.startswith("~"):
        allowed = {getattr(socket, name) for name in families.split()}
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        refuse = seccomp.ERRNO(errno.EAFNOSUPPORT)
        for family in range(AF_MAX):
            if family not in allowed:
                f.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.EQ, family))
        f.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
        load(f)
        applied.append(f"RestrictAddressFamilies={families}")
    if yes(last(pairs, "LockPersonality")):
        import ctypes

        current = ctypes.CDLL(None, use_errno=True).personality(0xFFFFFFFF)
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        # As systemd does: personality() may only "change" to the current persona.
        f.add_rule(seccomp.ERRNO(errno.EPERM), "personality", seccomp.Arg(0, seccomp.NE, current))
        load(f)
        applied.append("LockPersonality")
    filters = [v for k, v in pairs if k == "SystemCallFilter"]
    if filters:
        # systemd: the first allow-list entry starts from @default; "~" lines remove names.
        allow: set[str] = set()
        deny: set[str] = set()
        for value in filters:
            if value.startswith("~"):
                deny |= expand(value[1:].split())
            else:
                allow |= expand(["@default", *value.split()])
        err = last(pairs, "SystemCallErrorNumber")
        action = seccomp.ERRNO(getattr(errno, err)) if err else seccomp.KILL_PROCESS
        if allow:
            f = seccomp.SyscallFilter(action)
            for name in sorted(allow - deny):
                try:
                    f.add_rule(seccomp.ALLOW, name)
                except (RuntimeError, ValueError, OSError):
                    pass  # not a syscall on this architecture (systemd skips those too)
        else:
            f = seccomp.SyscallFilter(seccomp.ALLOW)
            for name in sorted(deny):
                try:
                    f.add_rule(action, name)
                except (RuntimeError, ValueError, OSError):
                    pass
        load(f)
        applied.append(f"SystemCallFilter ({len(allow - deny) or len(deny)} names)")
    if last(pairs, "SystemCallArchitectures") == "native":
        # libseccomp filters hold only the native architecture unless others are added,
        # and a syscall from another ABI hits the filters' bad-arch action.
        applied.append("SystemCallArchitectures=native")
    return applied


def run_commands(lines: list[str], env: dict[str, str], what: str) -> int:
    """Run ExecStartPre=/ExecReload= lines in order; the first failure's status, else 0."""
    for line in lines:
        ignore = line.startswith("-")
        argv = shlex.split(line.lstrip("-@:+!"))
        rc = subprocess.run(argv, env=env).returncode
        print(f"unitrun: {what} {shlex.join(argv)} -> {rc}", flush=True)
        if rc != 0 and not ignore:
            return rc
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("unit")
    p.add_argument("--pidfile", help="write this process's PID (the daemon's, after exec)")
    p.add_argument("--no-seccomp", action="store_true")
    p.add_argument("--reload", metavar="MAINPID", help="run ExecReload= for this MAINPID")
    args = p.parse_args()
    pairs = read_service_section(args.unit)
    argv = shlex.split(last(pairs, "ExecStart"))
    env = environment(pairs)
    if last(pairs, "Type") == "notify" and os.environ.get("NOTIFY_SOCKET"):
        env["NOTIFY_SOCKET"] = os.environ["NOTIFY_SOCKET"]
    if args.reload:
        reload = [v.replace("$MAINPID", args.reload) for k, v in pairs if k == "ExecReload"]
        return run_commands(reload, env, "ExecReload")
    workdir = last(pairs, "WorkingDirectory")
    if workdir:
        os.chdir(workdir.lstrip("-"))
    umask = last(pairs, "UMask")
    if umask:
        os.umask(int(umask, 8))
    applied = [] if args.no_seccomp else apply_seccomp(pairs)
    print(f"unitrun: {' '.join(applied) or 'no seccomp'}", flush=True)
    rc = run_commands([v for k, v in pairs if k == "ExecStartPre"], env, "ExecStartPre")
    if rc != 0:
        return rc
    print(f"unitrun: exec {shlex.join(argv)}", flush=True)
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    os.execve(argv[0], argv, env)
    return 127


if __name__ == "__main__":
    sys.exit(main())
