"""Opening the store: migrations, start-up errors, the token mirror (real PostgreSQL)."""

from __future__ import annotations

import json
import os
import threading

import psycopg2
import pytest
from twisted.internet import reactor

from cliproxy.config import parse_config
from cliproxy.service import build_service
from cliproxy.store._schema import MIGRATIONS, migrate
from cliproxy.store.database import StoreUnavailable, open_store
from tests.store.pgcluster import USER


def _config(dsn, tmp_path, optional=False):
    text = f"auth-dir: {tmp_path}\nstore:\n  type: postgres\n  dsn: '{dsn}'\n"
    if optional:
        text += "  optional: true\n"
    return parse_config(text)


def test_migrations_apply_once_even_when_instances_start_together(pg_dsn):
    versions = []

    def run():
        conn = psycopg2.connect(pg_dsn)
        versions.append(migrate(conn))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert versions == [MIGRATIONS[-1][0]] * 4
    conn = psycopg2.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM cliproxy_schema ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [v for v, _ in MIGRATIONS]
    conn.close()


def test_an_unreachable_store_is_one_clear_line(pg_cluster, tmp_path):
    dsn = f"host=127.0.0.1 port=1 user={USER} password=x dbname=postgres"
    with pytest.raises(StoreUnavailable) as e:
        open_store(_config(dsn, tmp_path), reactor, {})
    assert e.value.message.startswith("cliproxy: cannot reach the PostgreSQL store at")
    assert "\n" not in e.value.message and "password=x" not in e.value.message


def test_a_wrong_password_exits_with_one_line_naming_the_cause(pg_cluster, tmp_path):
    config = _config(pg_cluster.dsn(password="wrong"), tmp_path)
    with pytest.raises(SystemExit) as e:
        build_service(config, None, reactor)  # type: ignore[arg-type]
    message = str(e.value.code)
    assert "password authentication failed" in message and "wrong" not in message
    assert "\n" not in message


def test_an_optional_store_that_is_down_leaves_the_local_files(pg_cluster, tmp_path):
    dsn = f"host=127.0.0.1 port=1 user={USER} dbname=postgres"
    assert open_store(_config(dsn, tmp_path, optional=True), reactor, {}) is None


def test_token_rows_are_mirrored_and_a_hand_broken_row_is_skipped(pg_dsn, tmp_path):
    conn = psycopg2.connect(pg_dsn)
    migrate(conn)
    with conn.cursor() as cur:
        good = {"type": "claude", "access_token": "at-1", "refresh_token": "rt-1"}
        cur.execute("INSERT INTO cliproxy_auth VALUES ('good.json', %s)", (json.dumps(good),))
        cur.execute("INSERT INTO cliproxy_auth VALUES ('broken.json', '{not json')")
    conn.commit()
    conn.close()
    store = open_store(_config(pg_dsn, tmp_path), reactor, {})
    assert store is not None
    store.pool.close()
    assert sorted(os.listdir(tmp_path)) == ["good.json"]
    with open(tmp_path / "good.json") as f:
        assert json.load(f) == good
