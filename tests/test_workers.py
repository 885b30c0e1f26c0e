"""`workers: N`: the real daemon with two processes on one socket (twistd in a subprocess).

The fakes run in this test's reactor; everything that blocks (starting the daemon, HTTP
on plain sockets, finding which process accepted a connection) runs in a thread.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import task, threads

from tests.fakes import FakeClaude, FakeOAuth
from tests.oauth.kit import claude_file, oauth_config, write_file
from tests.oauth.test_serving_oauth import _delayed
from tests.serving_kit import CLIENT_KEY
from tests.test_daemon import BASE, Daemon, run_twistd

ACCOUNT = "claude-user@example.com.json"
MODEL = "claude-sonnet-4-5-20250929"


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the accepted end of the loopback connection from `client_port`."""
    want = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if (parts[1], parts[2]) == want and parts[9] != "0":
            inode = parts[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
        except OSError:
            continue
    return None


def connections_to_each_worker(d: Daemon, count: int) -> dict[int, http.client.HTTPConnection]:
    """One open connection accepted by each of the daemon's `count` processes."""
    deadline = time.monotonic() + 30
    while len(_children(d.proc.pid)) < count - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [d.proc.pid, *_children(d.proc.pid)]
    assert len(pids) == count, pids
    held: dict[int, http.client.HTTPConnection] = {}
    while len(held) < count and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=20)
        conn.connect()
        client_port = conn.sock.getsockname()[1]
        owner = None
        for _ in range(100):  # until the connection has left the accept queue
            owner = _owner(d.port, client_port, pids)
            if owner is not None:
                break
            time.sleep(0.01)
        if owner is not None and owner not in held:
            held[owner] = conn
        else:
            conn.close()
    assert len(held) == count, f"connections reached only {sorted(held)} of {pids}"
    return held


def _chat(conn: http.client.HTTPConnection, key: str = CLIENT_KEY) -> tuple[int, bytes]:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    return resp.status, resp.read()


@pytest_twisted.ensureDeferred
async def test_two_workers_refresh_a_token_once_and_both_serve_with_it(start_fake, tmp_path):
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.expires_in = 8 * 3600  # the new token is not due again
    oauth.add_refresh_token("rt-old")
    # hold the token answer until both workers are up and waiting for the refresh
    oauth.clock = task.Clock()
    oauth.script("POST", "/v1/oauth/token", _delayed(oauth, 1.0))
    claude = start_fake(FakeClaude)
    claude.keys = oauth.access_tokens  # only tokens the fake issued: not "at-old"
    auth = tmp_path / "auth"
    auth.mkdir()
    write_file(auth, ACCOUNT, claude_file("at-old", "rt-old", time.time() - 60))
    text = oauth_config(auth, claude_oauth=oauth, claude_api=claude)
    text = text.replace("port: 8317", "port: {port}") + "\nworkers: 2\n"
    d = await threads.deferToThread(Daemon, tmp_path, text)
    try:
        await threads.deferToThread(d.wait_ready)
        held = await threads.deferToThread(connections_to_each_worker, d, 2)
        oauth.clock.advance(1.0)
        answers = {}
        for pid, conn in held.items():
            answers[pid] = await threads.deferToThread(_chat, conn)
            conn.close()
        assert {pid: status for pid, (status, _) in answers.items()} == dict.fromkeys(held, 200)
        assert len(oauth.received("POST")) == 1  # one refresh between the two workers
        (new_token,) = oauth.access_tokens
        assert [r.key for r in claude.requests] == [new_token, new_token]
        saved = json.loads((auth / ACCOUNT).read_text())
        assert saved["access_token"] == new_token
        assert "another worker refreshed the token" in d.log.read_text()
    finally:
        await threads.deferToThread(d.stop_cleanly)


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_every_worker_and_sigterm_stops_them_all(tmp_path):
    d = await threads.deferToThread(Daemon, tmp_path, BASE + "workers: 2\n")
    try:
        await threads.deferToThread(d.wait_ready)
        held = await threads.deferToThread(connections_to_each_worker, d, 2)
        for conn in held.values():
            conn.close()
        d.config.write_text(d.config.read_text().replace("sk-daemon-key-aaaa", "sk-new-key-bbbb"))
        d.proc.send_signal(signal.SIGHUP)
        await threads.deferToThread(_wait_for_log, d, "config reloaded from", 2)
        held = await threads.deferToThread(connections_to_each_worker, d, 2)
        for conn in held.values():
            conn.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-new-key-bbbb"})
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            resp.read()
            conn.close()
    finally:
        workers = list(held) if "held" in locals() else []
        await threads.deferToThread(d.stop_cleanly)
    assert workers and not [pid for pid in workers if _alive(pid)]


def _wait_for_log(d: Daemon, text: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while d.log.read_text().count(text) < count:
        assert time.monotonic() < deadline, d.log.read_text()
        time.sleep(0.05)


def test_busy_port_with_two_workers_exits_1_with_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_twistd(tmp_path, BASE.format(port=port) + "workers: 2\n")
    assert r.returncode == 1
    err = (r.stdout + r.stderr).decode()
    assert f"port {port} on 127.0.0.1 is in use" in err
    assert "worker 1 started" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_bad_workers_option_exits_with_one_line(tmp_path, value):
    r = run_twistd(tmp_path, BASE.format(port=1), "--workers", value)
    assert r.returncode != 0
    assert b"--workers must be a number from 1 to 64" in r.stdout + r.stderr


def test_workers_key_defaults_to_one_and_is_bounded():
    from tests.config.yamltext import error_of, parse

    assert parse("port: 8317\n").workers == 1
    assert parse("workers: 4\n").workers == 4
    for bad in ("workers: 0\n", "workers: 65\n", "workers: '2'\n"):
        assert "workers" in str(error_of(bad))
