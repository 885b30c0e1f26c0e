"""`cliproxy store import|export`, the shared config document, CLIProxyAPI's pgstore tables."""

from __future__ import annotations

import json
import os
import time

import psycopg2
import pytest_twisted
import treq
from twisted.internet import reactor

from cliproxy.app import build_app
from cliproxy.cli import main
from cliproxy.config import load_config
from cliproxy.config.watcher import ConfigStore
from cliproxy.management.writer import load_document
from cliproxy.store.database import open_store
from tests.oauth.kit import claude_file
from tests.store.test_shared import _until

SECRET = "mgmt-secret-store-3"


def _config(path, dsn, auth, port, extra=""):
    path.write_text(
        "# kept comment\n"
        f"host: 127.0.0.1\nport: {port}\nauth-dir: {auth}\n"
        f"store:\n  type: postgres\n  dsn: '{dsn}'\n"
        f"remote-management:\n  secret-key: {SECRET}\n"
        "api-keys: [sk-client-shared-1]\n" + extra
    )
    return path


def _rows(dsn, table):
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, content FROM {table} ORDER BY id")
        rows = dict(cur.fetchall())
    conn.close()
    return rows


def test_import_copies_token_files_and_the_shared_config_and_export_writes_them_back(
    pg_dsn, tmp_path, capsys
):
    auth = tmp_path / "auth"
    auth.mkdir()
    good = claude_file("at-1", "rt-1", time.time() + 3600)
    (auth / "good.json").write_text(json.dumps(good))
    (auth / "broken.json").write_text("{not json")
    for f in auth.iterdir():
        f.chmod(0o600)
    first = _config(tmp_path / "first.yaml", pg_dsn, auth, 8317, "request-retry: 7\n")
    assert main(["store", "import", "--config", str(first)]) == 0
    out = capsys.readouterr().out
    assert "skipped broken.json" in out and "imported 1 token file(s) and the config" in out
    assert "s3cret" not in out
    assert json.loads(_rows(pg_dsn, "cliproxy_auth")["good.json"]) == good
    shared = load_document(_rows(pg_dsn, "cliproxy_config")["config.yaml"])
    assert shared["request-retry"] == 7 and shared["api-keys"] == ["sk-client-shared-1"]
    assert not {"host", "port", "store", "auth-dir"} & set(shared)
    # another host: its own port, auth-dir and store stay; the rest comes from the database
    other_auth = tmp_path / "other-auth"
    second = _config(tmp_path / "second.yaml", pg_dsn, other_auth, 9400)
    assert main(["store", "export", "--config", str(second)]) == 0
    assert json.loads((other_auth / "good.json").read_text()) == good
    assert os.stat(other_auth / "good.json").st_mode & 0o777 == 0o600
    assert not (other_auth / "broken.json").exists()
    config = load_config(str(second))
    assert (config.port, config.request_retry) == (9400, 7)
    assert os.path.expanduser(config.auth_dir) == str(other_auth)


def test_import_without_a_store_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"auth-dir: {tmp_path}\n")
    assert main(["store", "import", "--config", str(path)]) == 1
    assert "names no store: set store.dsn or PGSTORE_DSN" in capsys.readouterr().err


def test_import_reads_cliproxyapi_pgstore_tables(pg_dsn, tmp_path, capsys):
    record = claude_file("at-go", "rt-go", time.time() + 3600)
    conn = psycopg2.connect(pg_dsn)
    with conn.cursor() as cur:  # the tables as CLIProxyAPI's pgstore creates them
        cur.execute(
            "CREATE TABLE config_store (id TEXT PRIMARY KEY, content TEXT NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),"
            " updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        cur.execute(
            "CREATE TABLE auth_store (id TEXT PRIMARY KEY, content JSONB NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),"
            " updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        cur.execute("INSERT INTO config_store VALUES ('config', 'port: 8317\nrequest-retry: 4\n')")
        cur.execute("INSERT INTO auth_store VALUES ('claude-go.json', %s)", (json.dumps(record),))
    conn.commit()
    conn.close()
    path = _config(tmp_path / "c.yaml", pg_dsn, tmp_path / "auth", 8317)
    assert main(["store", "import", "--from-pgstore", "--config", str(path)]) == 0
    assert json.loads(_rows(pg_dsn, "cliproxy_auth")["claude-go.json"]) == record
    assert load_document(_rows(pg_dsn, "cliproxy_config")["config.yaml"])["request-retry"] == 4


class _Node:
    def __init__(self, path):
        config = load_config(str(path))
        self.shared = open_store(config, reactor, {})
        if self.shared.config_rewritten:
            config = load_config(str(path))
        self.store = ConfigStore(config)
        self.app = build_app(self.store, reactor, shared=self.shared)
        self.shared.startService()
        self.port = reactor.listenTCP(0, self.app.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    async def stop(self):
        await self.port.stopListening()
        await self.app.http.close()
        await self.shared.stopService()


@pytest_twisted.ensureDeferred
async def test_once_imported_a_management_write_on_one_instance_reaches_the_others_file(
    pg_dsn, tmp_path
):
    first = _config(tmp_path / "a.yaml", pg_dsn, tmp_path / "a-auth", 8317, "request-retry: 1\n")
    assert main(["store", "import", "--config", str(first)]) == 0
    second = _config(tmp_path / "b.yaml", pg_dsn, tmp_path / "b-auth", 9500)
    nodes = [_Node(first), _Node(second)]
    try:
        # the second instance started with the database's config, its own port kept
        assert nodes[1].store.current.request_retry == 1
        assert nodes[1].store.current.port == 9500
        await _until(lambda: nodes[1].shared.listener.connected, seconds=3.0)
        response = await treq.put(
            nodes[0].url + "/v0/management/request-retry",
            json.dumps({"value": 5}).encode(),
            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        )
        assert response.code == 200, await response.content()
        await _until(lambda: "request-retry: 5" in second.read_text(), seconds=3.0)
        text = second.read_text()
        assert "port: 9500" in text and str(tmp_path / "b-auth") in text
        assert load_config(str(second)).request_retry == 5
    finally:
        for n in nodes:
            await n.stop()
