"""Three real cliproxy daemons (twistd in subprocesses) on one real PostgreSQL store.

The fakes run in this test's reactor and the requests go out through treq on it; starting
and stopping the daemons (which blocks) runs in threads.
"""

from __future__ import annotations

import json
import time

import psycopg2
import pytest_twisted
import treq
from twisted.internet import defer, task, threads

from tests.fakes import FakeClaude, FakeOAuth
from tests.oauth.kit import claude_file, oauth_config
from tests.oauth.test_serving_oauth import _delayed, chat
from tests.serving_kit import CLIENT_KEY
from tests.store.test_shared import _seed
from tests.test_daemon import Daemon, free_port, run_twistd

ACCOUNT = "claude-user@example.com.json"
MODEL = "claude-sonnet-4-5-20250929"
SECRET = "mgmt-secret-store-1"


class Node:
    """One daemon: its own directory, config file and auth-dir; the shared store."""

    def __init__(self, tmp_path, name, dsn, oauth, claude):
        self.home = tmp_path / name
        self.home.mkdir(exist_ok=True)
        (self.home / "auth").mkdir(exist_ok=True)
        store = f"store:\n  type: postgres\n  dsn: '{dsn}'\n"
        mgmt = f"remote-management:\n  secret-key: {SECRET}\n"
        text = oauth_config(self.home / "auth", store, mgmt, claude_oauth=oauth, claude_api=claude)
        self.text = text.replace("port: 8317", "port: {port}")
        self.daemon: Daemon | None = None

    async def start(self):
        self.daemon = await threads.deferToThread(Daemon, self.home, self.text)
        await threads.deferToThread(self.daemon.wait_ready, 40.0)
        self.url = f"http://127.0.0.1:{self.daemon.port}"

    async def stop(self):
        if self.daemon is not None:
            await threads.deferToThread(self.daemon.stop)

    def log(self) -> str:
        return self.daemon.log.read_text() if self.daemon else ""

    async def chat(self, model=MODEL):
        response = await treq.post(
            self.url + "/v1/chat/completions",
            json.dumps(chat(model)).encode(),
            headers={"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"},
        )
        return response.code, await response.content()

    async def cooling(self) -> bool:
        response = await treq.get(
            self.url + "/v0/management/auth-files",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        files = (await response.json())["files"]
        return any(f["unavailable"] for f in files if f["name"] == ACCOUNT)


def _stored(dsn) -> dict:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT content FROM cliproxy_auth WHERE id = %s", (ACCOUNT,))
        record = json.loads(cur.fetchone()[0])
    conn.close()
    return record


async def _eventually(check, seconds=5.0):
    """Poll the async `check` until it is true (bounded: the change travels by NOTIFY)."""
    from twisted.internet import reactor

    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the change did not reach the instance"
        await task.deferLater(reactor, 0.05, lambda: None)


async def _cluster(start_fake, pg_dsn, tmp_path, expires, hold_refresh=False):
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.expires_in = 8 * 3600
    oauth.add_refresh_token("rt-old")
    oauth.access_tokens.add("at-old")
    if hold_refresh:  # the token answer waits until the test lets it go
        oauth.clock = task.Clock()
        oauth.script("POST", "/v1/oauth/token", _delayed(oauth, 1.0))
    claude = start_fake(FakeClaude)
    claude.keys = oauth.access_tokens
    _seed(pg_dsn, claude_file("at-old", "rt-old", expires))
    nodes = [Node(tmp_path, f"n{i}", pg_dsn, oauth, claude) for i in range(3)]
    await defer.gatherResults([defer.ensureDeferred(n.start()) for n in nodes])
    return oauth, claude, nodes


async def _stop_all(nodes):
    await defer.gatherResults([defer.ensureDeferred(n.stop()) for n in nodes])
    for n in nodes:
        assert "Traceback" not in n.log(), n.log()


@pytest_twisted.ensureDeferred
async def test_three_daemons_refresh_an_expired_token_once_for_150_concurrent_requests(
    start_fake, pg_dsn, tmp_path
):
    oauth, claude, nodes = await _cluster(
        start_fake, pg_dsn, tmp_path, time.time() - 60, hold_refresh=True
    )
    try:
        # the token answer is held until every daemon has requests waiting for it
        calls = [defer.ensureDeferred(n.chat()) for n in nodes for _ in range(50)]
        await oauth.wait_for(lambda: bool(oauth.clock.getDelayedCalls()), timeout=20)
        assert claude.requests == []
        oauth.clock.advance(1.0)
        results = await defer.gatherResults(calls)
        assert [code for code, _ in results] == [200] * 150, results[0]
        assert len(oauth.received("POST")) == 1
        (issued,) = oauth.access_tokens - {"at-old"}
        assert {r.key for r in claude.requests} == {issued}
        stored = _stored(pg_dsn)
        assert stored["access_token"] == issued
        # every daemon's own token file holds the winner's token too
        for n in nodes:
            await _eventually(
                lambda n=n: defer.succeed(
                    json.loads((n.home / "auth" / ACCOUNT).read_text())["access_token"] == issued
                )
            )
    finally:
        await _stop_all(nodes)


@pytest_twisted.ensureDeferred
async def test_a_429_cools_all_three_survives_a_restart_and_a_database_outage_loses_nothing(
    start_fake, pg_dsn, pg_cluster, tmp_path
):
    oauth, claude, nodes = await _cluster(start_fake, pg_dsn, tmp_path, time.time() + 8 * 3600)
    try:
        assert [code for code, _ in [await n.chat() for n in nodes]] == [200] * 3
        # the database goes away: every request with a ready credential is still served
        await threads.deferToThread(pg_cluster.stop, "immediate")
        try:
            results = await defer.gatherResults(
                [defer.ensureDeferred(n.chat()) for n in nodes for _ in range(10)]
            )
        finally:
            await threads.deferToThread(pg_cluster.resume)
        assert [code for code, _ in results] == [200] * 30
        assert _stored(pg_dsn)["refresh_token"] == "rt-old"  # no token lost
        assert oauth.received("POST") == []
        # a 429 with Retry-After: 300 on one daemon benches the credential on all three
        claude.script_error(429, "slow down", retry_after=300)
        code, _ = await nodes[0].chat()
        assert code == 429
        for n in nodes:
            await _eventually(n.cooling, seconds=15)
        # and a restarted daemon reads it back from the table
        await nodes[1].stop()
        await nodes[1].start()
        await _eventually(nodes[1].cooling)
        served = len(claude.requests)
        code, _ = await nodes[1].chat()
        assert code == 429 and len(claude.requests) == served  # benched: not even tried
    finally:
        await _stop_all(nodes)


def test_a_daemon_with_a_wrong_password_exits_1_with_one_line(pg_cluster, tmp_path):
    dsn = pg_cluster.dsn(password="not-the-password")
    text = (
        f"host: 127.0.0.1\nport: {free_port()}\nauth-dir: {tmp_path}\n"
        f"store:\n  type: postgres\n  dsn: '{dsn}'\n"
    )
    done = run_twistd(tmp_path, text)
    assert done.returncode == 1
    out = (done.stdout + done.stderr).decode()
    assert "password authentication failed" in out and "check the user and password" in out
    assert "not-the-password" not in out and "Traceback" not in out


def test_a_daemon_skips_a_hand_broken_row_with_a_warning_naming_it(pg_dsn, tmp_path):
    # valid well past the background refresh lead: no token endpoint is needed
    _seed(pg_dsn, claude_file("at-old", "rt-old", time.time() + 8 * 3600))
    conn = psycopg2.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO cliproxy_auth VALUES ('hand-edited.json', '{\"type\": \"cla')")
    conn.commit()
    conn.close()
    node = Node(tmp_path, "n0", pg_dsn, None, None)
    d = Daemon(node.home, node.text)
    try:
        d.wait_ready(40.0)
        code, body = d.get("/v0/management/auth-files", {"Authorization": f"Bearer {SECRET}"})
        assert code == 200
        assert [f["name"] for f in json.loads(body)["files"]] == [ACCOUNT]
        log = d.log.read_text()
        assert "credential hand-edited.json is not valid JSON" in log and "skipped" in log
        assert not (node.home / "auth" / "hand-edited.json").exists()
    finally:
        d.stop()
