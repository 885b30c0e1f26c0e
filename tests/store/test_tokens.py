"""Token files shared through the store: what one instance adds or removes, all have."""

from __future__ import annotations

import json
import time

import psycopg2
import pytest_twisted
import treq
from twisted.internet import reactor, task, threads

from tests.oauth.kit import claude_file
from tests.store.test_shared import ACCOUNT, SECRET, _start, _until, stop_all

NEW = "claude-second@example.com.json"


def _rows(dsn) -> dict[str, dict]:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT id, content FROM cliproxy_auth")
        rows = {name: json.loads(content) for name, content in cur.fetchall()}
    conn.close()
    return rows


async def _manage(instance, method, path, body=None):
    response = await treq.request(
        method,
        instance.url + "/v0/management" + path,
        data=body,
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    return response.code, await response.content()


def _names(instance) -> list[str]:
    return sorted(a.id for a in instance.app.authdir.accounts())


@pytest_twisted.ensureDeferred
async def test_an_upload_and_a_delete_on_one_instance_reach_the_others(
    start_fake, pg_dsn, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 3600, n=2)
    first, second = instances
    try:
        await task.deferLater(reactor, 0.3, lambda: None)  # the listeners connect
        record = claude_file("at-two", "rt-two", time.time() + 3600)
        record["email"] = "second@example.com"
        upload = json.dumps(record).encode()
        code, body = await _manage(first, "POST", f"/auth-files?name={NEW}", upload)
        assert code == 200, body
        await _until(lambda: NEW in _names(second), seconds=3.0)
        copy = second.app.authdir.path + "/" + NEW
        with open(copy) as f:
            assert json.load(f) == record
        assert _rows(pg_dsn)[NEW] == record
        code, body = await _manage(first, "DELETE", f"/auth-files?name={NEW}")
        assert code == 200, body
        await _until(lambda: NEW not in _names(second), seconds=3.0)
        assert sorted(_rows(pg_dsn)) == [ACCOUNT]
        assert _names(second) == [ACCOUNT]
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_a_file_added_while_the_store_was_unknown_is_shared_at_start(
    start_fake, pg_dsn, tmp_path
):
    local = tmp_path / "i0"
    local.mkdir()
    record = claude_file("at-local", "rt-local", time.time() + 3600)
    (local / NEW).write_text(json.dumps(record))
    (local / NEW).chmod(0o600)
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 3600, n=2)
    try:
        await _until(lambda: NEW in _names(instances[1]), seconds=3.0)
        assert _rows(pg_dsn)[NEW] == record
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_an_upload_made_while_the_database_is_down_reaches_the_others_when_it_returns(
    start_fake, pg_dsn, pg_cluster, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 3600, n=2)
    first, second = instances
    try:
        await _until(lambda: all(i.shared.listener.connected for i in instances), seconds=3.0)
        await threads.deferToThread(pg_cluster.stop, "immediate")
        try:
            record = claude_file("at-three", "rt-three", time.time() + 3600)
            upload = json.dumps(record).encode()
            code, body = await _manage(first, "POST", f"/auth-files?name={NEW}", upload)
            assert code == 200, body  # served locally while the database is away
            await _until(lambda: not first.shared.listener.connected, seconds=3.0)
        finally:
            await threads.deferToThread(pg_cluster.resume)
        await _until(lambda: NEW in _names(second), seconds=15.0)
        assert _rows(pg_dsn)[NEW] == record
    finally:
        await stop_all(instances)
