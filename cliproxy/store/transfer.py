# -*- test-case-name: tests.store.test_transfer -*-
"""`cliproxy store import|export --config FILE`: the auth-dir and config into the database
and back (blocking; a command, not the daemon).

`import` copies every token file of FILE's `auth-dir` into `cliproxy_auth` and FILE's shared
part (all but `LOCAL_KEYS`) into `cliproxy_config`; from then on the instances take their
config from the database. `--from-pgstore` instead copies what CLIProxyAPI's PostgreSQL
store wrote (`config_store`, `auth_store` in the same database). `export` writes the rows
back into FILE's auth-dir and into FILE (its local keys kept). Running instances hear
about an import by NOTIFY and apply it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import psycopg2

from cliproxy.config import Config
from cliproxy.credentials.store import AuthFileError, read_auth_file, serialize
from cliproxy.store._schema import migrate
from cliproxy.store.config_doc import CONFIG_ID, shared_text, write_merged
from cliproxy.store.database import StoreUnavailable, connect, mirror_tokens, parse_record
from cliproxy.store.settings import StoreSettings, redacted, store_settings

__all__ = ["export_store", "import_store"]

Say = Callable[[str], None]

_PUT_AUTH = (
    "INSERT INTO cliproxy_auth (id, content) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE"
    " SET content = EXCLUDED.content, updated_at = now(); SELECT pg_notify('cliproxy_auth', %s)"
)
_PUT_CONFIG = (
    "INSERT INTO cliproxy_config (id, content) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE"
    " SET content = EXCLUDED.content, updated_at = now();"
    " SELECT pg_notify('cliproxy_config', %s)"
)


def _settings(config: Config, environ: Mapping[str, str]) -> StoreSettings:
    settings = store_settings(config, environ)
    if settings is None:
        raise StoreUnavailable(
            f"cliproxy: {config.source_path} names no store: set store.dsn or PGSTORE_DSN"
        )
    return settings


def _open(config: Config, environ: Mapping[str, str]) -> tuple[Any, str]:
    settings = _settings(config, environ)
    conn = connect(settings)
    try:
        migrate(conn)
    except psycopg2.Error as e:
        conn.close()
        raise StoreUnavailable(f"cliproxy: the PostgreSQL store failed: {e}") from None
    return conn, redacted(settings.dsn)


def import_store(
    config: Config, environ: Mapping[str, str], say: Say, from_pgstore: bool = False
) -> int:
    """Copy FILE's auth-dir and config (or a pgstore's tables) into the database."""
    conn, where = _open(config, environ)
    try:
        if from_pgstore:
            files, text = _pgstore(conn, say)
        else:
            files, text = _local(config, say)
        with conn.cursor() as cur:
            for name, record in sorted(files.items()):
                cur.execute(_PUT_AUTH, (name, serialize(record).decode(), name))
            if text is not None:
                cur.execute(_PUT_CONFIG, (CONFIG_ID, shared_text(text), CONFIG_ID))
        conn.commit()
    except psycopg2.Error as e:
        raise StoreUnavailable(f"cliproxy: import into {where} failed: {e}") from None
    finally:
        conn.close()
    what = "and the config " if text is not None else ""
    say(f"imported {len(files)} token file(s) {what}into {where}")
    return 0


def _local(config: Config, say: Say) -> tuple[dict[str, dict[str, Any]], str | None]:
    directory = os.path.expanduser(config.auth_dir)
    files: dict[str, dict[str, Any]] = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            files[name] = read_auth_file(os.path.join(directory, name)).record
        except AuthFileError as e:
            say(f"skipped {name}: {e}")
    with open(os.path.expanduser(config.source_path), encoding="utf-8-sig") as f:
        return files, f.read()


def _pgstore(conn: Any, say: Say) -> tuple[dict[str, dict[str, Any]], str | None]:
    """CLIProxyAPI's pgstore tables: `auth_store` (id: the file's path under its auth
    directory, content: JSONB) and `config_store` (the row "config": the YAML text)."""
    files: dict[str, dict[str, Any]] = {}
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('auth_store'), to_regclass('config_store')")
        auth_table, config_table = cur.fetchone()
        if auth_table is None and config_table is None:
            raise StoreUnavailable("cliproxy: no CLIProxyAPI pgstore tables in this database")
        if auth_table is not None:
            cur.execute("SELECT id, content::text FROM auth_store ORDER BY id")
            for ident, content in cur.fetchall():
                name = os.path.basename(str(ident))
                if not name.endswith(".json"):
                    name += ".json"
                record = parse_record(name, content)
                if record is None:
                    say(f"skipped {ident}: not a JSON object")
                    continue
                files[name] = record
        text = None
        if config_table is not None:
            cur.execute("SELECT content FROM config_store WHERE id = 'config'")
            row = cur.fetchone()
            text = None if row is None else str(row[0])
    conn.commit()
    return files, text


def export_store(config: Config, environ: Mapping[str, str], say: Say) -> int:
    """Write the database's token files and config into FILE's auth-dir and FILE."""
    conn, where = _open(config, environ)
    try:
        directory = os.path.expanduser(config.auth_dir)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        written = mirror_tokens(conn, directory)
        with conn.cursor() as cur:
            cur.execute("SELECT content FROM cliproxy_config WHERE id = %s", (CONFIG_ID,))
            row = cur.fetchone()
        conn.commit()
    except psycopg2.Error as e:
        raise StoreUnavailable(f"cliproxy: export from {where} failed: {e}") from None
    finally:
        conn.close()
    config_done = ""
    if row is not None:
        changed = write_merged(os.path.expanduser(config.source_path), str(row[0]))
        config_done = f"; {config.source_path} " + ("updated" if changed else "unchanged")
    say(f"exported {written} changed token file(s) into {directory}{config_done}")
    return 0
