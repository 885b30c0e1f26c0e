"""The real daemon, started the way users start it: `twistd -n cliproxy --config FILE`.

These tests run twistd in a subprocess and talk to it over loopback. Waiting for a
separate process to come up is the only place the suite polls with short sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Daemon:
    def __init__(self, tmp_path: Path, config_text: str, extra_args=()):
        self.port = free_port()
        self.config = tmp_path / "config.yaml"
        text = config_text.format(port=self.port)
        if "auth-dir:" not in text:
            text += f"\nauth-dir: {tmp_path / 'auth'}\n"
        self.config.write_text(text)
        self.log = tmp_path / "twistd.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [*TWISTD, "-n", "--pidfile=", "cliproxy", "--config", str(self.config), *extra_args],
            cwd=tmp_path,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited: " + self.log.read_text())
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("daemon not ready: " + self.log.read_text())

    def request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def stop_cleanly(self) -> None:
        """SIGTERM, then a clean exit: twistd re-raises the signal it stopped on (systemd
        counts death by SIGTERM as a clean stop), and nothing failed on the way down."""
        code = self.stop()
        assert code in (0, -signal.SIGTERM), code
        log = self.log.read_text()
        assert "Traceback" not in log, log
        assert "Main loop terminated" in log or "Server Shut Down" in log, log

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


BASE = """
host: 127.0.0.1
port: {port}
api-keys:
  - sk-daemon-key-aaaa
"""


@pytest.fixture
def daemon(tmp_path):
    started = []

    def start(text=BASE, extra=()):
        d = Daemon(tmp_path, text, extra)
        started.append(d)
        d.wait_ready()
        return d

    yield start
    for d in started:
        d.stop()


def run_twistd(tmp_path, config_text, *args) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "cliproxy", "--config", str(cfg), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )


def test_healthz_and_models_keyed(daemon):
    d = daemon()
    assert d.get("/healthz") == (200, b'{"status":"ok"}')
    assert d.get("/v1/models")[0] == 401
    status, body = d.get("/v1/models", {"Authorization": "Bearer sk-daemon-key-aaaa"})
    assert status == 200
    assert json.loads(body)["object"] == "list"


def test_shipped_default_config_starts_on_loopback(tmp_path):
    # conf/config.yaml exactly as shipped; only the listener moves off 8317.
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    d = Daemon.__new__(Daemon)
    d.port = port
    d.log = tmp_path / "twistd.log"
    d.proc = subprocess.Popen(
        [
            *TWISTD,
            "-n",
            "--pidfile=",
            "cliproxy",
            "--config",
            str(ROOT / "conf" / "config.yaml"),
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=d.log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        d.wait_ready()
        assert d.get("/v1/models")[0] == 200  # no api-keys: open access, loopback only
    finally:
        d.stop_cleanly()


def test_yaml_error_exits_nonzero_naming_the_line(tmp_path):
    r = run_twistd(tmp_path, "host: 127.0.0.1\nport: 8317\napi-keys: [unclosed\n")
    assert r.returncode != 0
    err = (r.stdout + r.stderr).decode()
    assert "config.yaml" in err
    assert "line" in err


def test_bad_value_exits_nonzero_naming_key_and_line(tmp_path):
    text = "host: 127.0.0.1\nport: 8317\nclaude-api-key:\n  - api-key: k\n    base-url: not a url\n"
    r = run_twistd(tmp_path, text)
    assert r.returncode != 0
    err = (r.stdout + r.stderr).decode()
    assert "claude-api-key[0].base-url" in err
    assert "line 5" in err


def test_missing_config_file_exits_nonzero(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "cliproxy", "--config", str(tmp_path / "nope.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "nope.yaml" in (r.stdout + r.stderr).decode()


def test_refuses_public_address_without_keys(tmp_path):
    r = run_twistd(tmp_path, "host: 0.0.0.0\nport: 8317\n")
    assert r.returncode != 0
    assert "api-keys" in (r.stdout + r.stderr).decode()


def test_refuses_public_address_with_placeholder_keys(tmp_path):
    r = run_twistd(tmp_path, "host: 0.0.0.0\nport: 8317\napi-keys: [your-api-key-1]\n")
    assert r.returncode != 0


def test_api_keys_edit_applies_live_and_broken_edit_keeps_old(daemon):
    d = daemon()
    hdr_new = {"x-api-key": "sk-daemon-key-bbbb"}
    assert d.get("/v1/models", hdr_new)[0] == 401
    d.config.write_text(
        d.config.read_text().replace(
            "  - sk-daemon-key-aaaa\n", "  - sk-daemon-key-aaaa\n  - sk-daemon-key-bbbb\n"
        )
    )
    os.kill(d.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while d.get("/v1/models", hdr_new)[0] != 200:
        assert time.monotonic() < deadline, d.log.read_text()
        time.sleep(0.05)
    # a broken edit: the old keys stay in force and the daemon keeps serving
    d.config.write_text("api-keys: [oops\n")
    os.kill(d.proc.pid, signal.SIGHUP)
    time.sleep(0.3)
    assert d.get("/v1/models", hdr_new)[0] == 200
    assert d.proc.poll() is None
    assert "line" in d.log.read_text()


def test_hundred_mib_body_gets_413_without_memory_growth(daemon):
    d = daemon()
    before = rss_kib(d.proc.pid)
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    # no Content-Length: the cap has to hold on a streamed (chunked) body too
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        b"x-api-key: sk-daemon-key-aaaa\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"100000\r\n" + b"a" * 0x100000 + b"\r\n"
    sent = 0
    try:
        for _ in range(100):
            sock.sendall(chunk)
            sent += 1
    except OSError:
        pass  # the daemon closed on us: expected once the cap is hit
    sock.settimeout(5)
    answer = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except OSError:
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    after = rss_kib(d.proc.pid)
    assert after - before < 40 * 1024, (before, after)
    assert d.get("/healthz")[0] == 200


def test_sigterm_exits_cleanly(daemon):
    d = daemon()
    d.stop_cleanly()


def test_busy_port_exits_1_with_one_line_before_any_token_file_is_touched(tmp_path):
    """Fail fast: the listener binds in privilegedStartService, before any service starts,
    so the token refresher never runs (it would rotate the other daemon's refresh token)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        auth = tmp_path / "auth"
        auth.mkdir()
        token = auth / "claude-user@example.com.json"
        token.write_text(
            '{"type": "claude", "email": "user@example.com", "access_token": "a", '
            '"refresh_token": "r", "expired": "2000-01-01T00:00:00Z"}'
        )
        before = token.stat().st_mtime_ns
        text = f"host: 127.0.0.1\nport: {port}\nauth-dir: {auth}\n"
        r = run_twistd(tmp_path, text)
    assert r.returncode == 1, r
    out = (r.stdout + r.stderr).decode()
    assert f"port {port} on 127.0.0.1 is in use" in out, out
    assert "Traceback" not in out, out
    assert token.stat().st_mtime_ns == before


def test_unreadable_tls_files_exit_1_with_the_reason(tmp_path):
    text = (
        "host: 127.0.0.1\nport: 8317\ntls:\n  enable: true\n"
        f"  cert: {tmp_path / 'missing.crt'}\n  key: {tmp_path / 'missing.key'}\n"
    )
    r = run_twistd(tmp_path, text)
    assert r.returncode == 1, r
    out = (r.stdout + r.stderr).decode()
    assert "missing.crt" in out or "cannot listen" in out, out
    assert "Traceback" not in out, out
