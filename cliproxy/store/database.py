# -*- test-case-name: tests.store.test_database -*-
"""Opening the store at start: reach the database, apply the schema, mirror the tokens.

This runs once, before the reactor starts (like binding the port), so it may block; an
unreachable server or a wrong password becomes `StoreUnavailable` with one line to print.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import psycopg2
from twisted.logger import Logger

from cliproxy.config import Config
from cliproxy.credentials.store import read_auth_file, write_auth_file
from cliproxy.store._schema import migrate
from cliproxy.store.listener import CONNECT_TIMEOUT
from cliproxy.store.settings import StoreSettings, redacted, store_settings
from cliproxy.store.shared import IStoreReactor, SharedStore

__all__ = ["StoreUnavailable", "connect", "mirror_tokens", "open_store"]

log = Logger()


class StoreUnavailable(Exception):
    """The configured store cannot be used; `message` is the one line to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reason(error: psycopg2.Error) -> str:
    text = (str(error).strip().splitlines() or ["unknown error"])[0]
    if "password authentication failed" in text:
        return f"{text} (check the user and password in store.dsn or PGSTORE_DSN)"
    return text


def connect(settings: StoreSettings) -> Any:
    """A blocking psycopg2 connection (start-up and CLI only)."""
    try:
        return psycopg2.connect(settings.dsn, connect_timeout=CONNECT_TIMEOUT)
    except psycopg2.Error as e:
        raise StoreUnavailable(
            f"cliproxy: cannot reach the PostgreSQL store at {redacted(settings.dsn)}: {_reason(e)}"
        ) from None


def mirror_tokens(conn: Any, auth_dir: str) -> int:
    """Write every credential row into `auth_dir` as a token file; how many were written.

    A row that is not a JSON object is skipped with a warning naming it.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT id, content FROM cliproxy_auth ORDER BY id")
        rows = cur.fetchall()
    conn.commit()
    written = 0
    for name, content in rows:
        record = parse_record(str(name), content)
        if record is None:
            continue
        path = os.path.join(auth_dir, os.path.basename(str(name)))
        try:
            if read_auth_file(path).record == record:
                continue
        except Exception:
            pass  # missing or unreadable: write it
        write_auth_file(path, record)
        written += 1
    return written


def mirror_config(conn: Any, path: str) -> bool:
    """Write the imported config document (if any) into the config file at `path`,
    keeping its local keys; True if the file changed."""
    from cliproxy.store.config_doc import CONFIG_ID, write_merged

    with conn.cursor() as cur:
        cur.execute("SELECT content FROM cliproxy_config WHERE id = %s", (CONFIG_ID,))
        row = cur.fetchone()
    conn.commit()
    if row is None or not path:
        return False
    return write_merged(os.path.expanduser(path), str(row[0]))


def parse_record(name: str, content: object) -> dict[str, Any] | None:
    """The row's token JSON, or None (logged) when it is not a JSON object."""
    try:
        record = json.loads(str(content))
    except ValueError as e:
        log.warn("store: credential {name} is not valid JSON ({e}); skipped", name=name, e=e)
        return None
    if not isinstance(record, dict):
        log.warn("store: credential {name} is not a JSON object; skipped", name=name)
        return None
    return record


def open_store(
    config: Config, reactor: IStoreReactor, environ: Mapping[str, str]
) -> SharedStore | None:
    """The shared store `config` names, schema applied and tokens mirrored; None if none.

    Raises:
        StoreUnavailable: the database cannot be reached (and `store.optional` is off),
            or the schema cannot be applied.
    """
    settings = store_settings(config, environ)
    if settings is None:
        return None
    try:
        conn = connect(settings)
    except StoreUnavailable as e:
        if not settings.optional:
            raise
        log.warn("{message}; store.optional: serving from the local files", message=e.message)
        return None
    try:
        version = migrate(conn)
        mirrored = mirror_tokens(conn, config.auth_dir)
        rewritten = mirror_config(conn, config.source_path)
    except psycopg2.Error as e:
        raise StoreUnavailable(f"cliproxy: the PostgreSQL store failed: {_reason(e)}") from None
    except (OSError, ValueError) as e:
        raise StoreUnavailable(f"cliproxy: the shared config cannot be applied: {e}") from None
    finally:
        conn.close()
    log.info(
        "store: PostgreSQL at {where}, schema v{version}, {n} credential file(s) updated",
        where=redacted(settings.dsn),
        version=version,
        n=mirrored,
    )
    if rewritten:
        log.info("store: the shared config from the database is in {path}", path=config.source_path)
    store = SharedStore(settings, reactor)
    store.config_rewritten = rewritten
    return store
