"""A throwaway PostgreSQL cluster for the store tests: initdb + pg_ctl under a temp dir.

Debian's `postgresql` package (installed by .ci/postgres) provides the binaries; run as
root, the cluster belongs to `nobody` (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile

USER = "cliproxy"
PASSWORD = "s3cret-test"


def binaries() -> str | None:
    """The directory holding initdb and pg_ctl, or None."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(directory, "initdb")):
            return directory
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="cliproxy-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self._as: list[str] = []
        self._start_args: tuple[str, ...] = ()
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
            self._as = ["runuser", "-u", "nobody", "--"]

    def _run(self, *args: str) -> None:
        # the server inherits pg_ctl's stdout: never a pipe (it would never reach EOF)
        subprocess.run(
            [*self._as, *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
            timeout=60,
        )

    def start(self) -> None:
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD)
        if self._as:
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(
            f"{self.bindir}/initdb", "-D", self.data, "-U", USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c fsync=off"
            f" -c unix_socket_directories={self.root} -c max_connections=100"
        )
        log = os.path.join(self.root, "server.log")
        self._start_args = (
            f"{self.bindir}/pg_ctl", "-D", self.data, "-l", log, "-o", opts, "-w", "-s", "start"
        )  # fmt: skip
        self._run(*self._start_args)

    def resume(self) -> None:
        """Start the (stopped) server again, on the same port and data."""
        self._run(*self._start_args)

    def stop(self, mode: str = "immediate") -> None:
        self._run(f"{self.bindir}/pg_ctl", "-D", self.data, "-m", mode, "-w", "-s", "stop")

    def dsn(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={password} dbname={database}"

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
