"""The `cliproxy` command: login options in both spellings, and a real login in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor

from cliproxy import cli
from tests.fakes import FakeOAuth
from tests.oauth.kit import endpoints_yaml
from tests.oauth.test_login import Browser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "argv, provider",
    [
        (["login", "claude"], "claude"),
        (["--claude-login"], "claude"),
        (["-claude-login"], "claude"),
        (["--codex-login", "--no-browser"], "codex"),
        (["-login", "-project_id", "my-proj"], "gemini"),
        (["--login", "--project_id=ALL"], "gemini"),
    ],
)
def test_login_spellings(argv, provider):
    args = cli.parse_args(argv)
    assert (args.command, args.provider) == ("login", provider)
    if "my-proj" in argv:
        assert args.project_id == "my-proj"


def test_login_options():
    args = cli.parse_args(
        ["login", "gemini", "--no-browser", "--oauth-callback-port", "9000", "--project-id", "p"]
    )
    assert (args.no_browser, args.oauth_callback_port, args.project_id) == (True, 9000, "p")
    assert cli.parse_args(["-codex-login", "-oauth-callback-port=1456"]).oauth_callback_port == 1456
    with pytest.raises(SystemExit):
        cli.parse_args(["login", "kiro"])  # vertex is an import now
    with pytest.raises(SystemExit):
        cli.parse_args(["--claude-login", "--codex-login"])


def test_version_and_check_config_still_work(tmp_path, capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("cliproxy ")
    path = tmp_path / "config.yaml"
    path.write_text("host: 127.0.0.1\nport: 8317\n")
    assert cli.main(["check-config", "--config", str(path)]) == 0


def test_a_bad_config_or_port_stops_a_login_with_one_line(tmp_path, capsys):
    assert cli.main(["login", "claude", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: file not found" in capsys.readouterr().err
    assert cli.main(["login", "claude", "--oauth-callback-port", "70000"]) == 2
    assert "--oauth-callback-port must be between 1 and 65535" in capsys.readouterr().err


def test_without_a_config_a_login_uses_the_default_auth_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.login_config(None).auth_dir == str(tmp_path / ".cli-proxy-api")
    (tmp_path / "config.yaml").write_text("auth-dir: /srv/auth\n")
    assert cli.login_config(None).auth_dir == "/srv/auth"


class Process(protocol.ProcessProtocol):
    def __init__(self):
        self.out = b""
        self.err = b""
        self.url: defer.Deferred = defer.Deferred()
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data):
        self.out += data
        for line in self.out.decode().splitlines():
            if line.startswith("  http") and not self.url.called:
                self.url.callback(line.strip())

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("argv", [["login", "codex"], ["-codex-login"]])
@pytest_twisted.ensureDeferred
async def test_a_real_login_command_with_a_pasted_address(argv, start_fake, tmp_path):
    oauth = start_fake(FakeOAuth, flavor="codex")
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path / 'auth'}\n" + endpoints_yaml(codex_oauth=oauth))
    proc = Process()
    args = [*argv, "--config", str(config), "--no-browser"]
    args += ["--oauth-callback-port", str(free_port())]
    transport = reactor.spawnProcess(
        proc,
        sys.executable,
        [sys.executable, "-m", "cliproxy.cli", *args],
        env={**os.environ, "PYTHONPATH": ROOT},
        path=ROOT,
    )
    try:
        url = await proc.url.addTimeout(20, reactor)
        browser = Browser(follow=False)  # the browser is "elsewhere": paste what it shows
        browser(url)
        transport.write((await browser.location).encode() + b"\n")
        code = await proc.ended.addTimeout(20, reactor)
    finally:
        if not proc.ended.called:
            transport.signalProcess("KILL")
    out = proc.out.decode()
    assert code == 0, proc.err.decode()
    path = tmp_path / "auth" / "codex-user@example.com-plus.json"
    assert f"Saved {path} (mode 0600)." in out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["type"] == "codex" and record["access_token"] not in out
