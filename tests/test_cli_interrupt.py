"""`cliproxy` on Ctrl-C: one line and exit status 130, never a traceback; --help for Debian."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cliproxy import cli

ROOT = Path(cli.__file__).resolve().parent.parent


def cliproxy(*args: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cliproxy.cli", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ctrl_c_while_a_login_waits_for_the_browser(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f'auth-dir: "{tmp_path / "auth"}"\n')
    proc = cliproxy(
        "login",
        "claude",
        "--no-browser",
        "--config",
        str(config),
        "--oauth-callback-port",
        str(free_port()),
        tmp_path=tmp_path,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"Waiting up to"):
                break
        else:
            pytest.fail(f"the login never waited: {proc.stderr.read()!r}")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED
    assert b"Traceback" not in err
    assert err.strip().splitlines()[-1] == b"cliproxy login claude: interrupted, nothing saved"
    assert not (tmp_path / "auth").exists() or not any((tmp_path / "auth").iterdir())


def test_ctrl_c_outside_the_event_loop(tmp_path):
    # check-config blocks opening a FIFO nobody writes to: interrupt it there.
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    proc = cliproxy("check-config", "--config", str(fifo), tmp_path=tmp_path)
    try:
        # Returns once the command has opened the FIFO for reading.
        writer = os.open(fifo, os.O_WRONLY)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        os.close(writer)
    finally:
        proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED
    assert err.strip() == b"cliproxy: interrupted"


def test_help_names_the_twistd_command_installed_here(monkeypatch, capsys):
    found = {"twistd3": "/usr/bin/twistd3"}
    monkeypatch.setattr(cli.shutil, "which", found.get)
    assert cli.twistd_command() == "twistd3"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "twistd3 -n cliproxy" in out
    assert "130" in out and "Exit status" in out
    found["twistd"] = "/usr/local/bin/twistd"
    assert cli.twistd_command() == "twistd"
