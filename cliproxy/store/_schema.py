# -*- test-case-name: tests.store.test_database -*-
"""The store's tables, as numbered migrations applied in order at start.

Every instance runs `migrate` at start under a session advisory lock, so two instances
starting together apply each step once. A step is never edited after release: a change
is a new step appended to `MIGRATIONS`. The version reached is in `cliproxy_schema`.

Token JSON is kept as TEXT, not JSONB: a row edited by hand into invalid JSON must still
load as "that credential is skipped, with a warning", not fail the whole table.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "migrate"]

#: the advisory lock key (any constant; "cpx" in ASCII) held while migrating
MIGRATION_LOCK = 0x637078

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE cliproxy_auth (
            id TEXT PRIMARY KEY,
            content TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE cliproxy_config (
            id TEXT PRIMARY KEY,
            content TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE cliproxy_cooldown (
            credential_id TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            until DOUBLE PRECISION NOT NULL,
            level INTEGER NOT NULL DEFAULT 0,
            status INTEGER NOT NULL DEFAULT 0,
            quota BOOLEAN NOT NULL DEFAULT false,
            suspends BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (credential_id, model)
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE cliproxy_usage (
            id BIGSERIAL PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL DEFAULT now(),
            instance TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            credential_id TEXT NOT NULL,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            ok BOOLEAN NOT NULL DEFAULT true
        );
        CREATE INDEX cliproxy_usage_at ON cliproxy_usage (at);
        """,
    ),
    (
        3,
        """
        ALTER TABLE cliproxy_usage
            ADD COLUMN route TEXT NOT NULL DEFAULT '',
            ADD COLUMN client_key TEXT NOT NULL DEFAULT '',
            ADD COLUMN status INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0,
            ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
        """,
    ),
    (
        4,
        """
        ALTER TABLE cliproxy_cooldown ADD COLUMN reason TEXT NOT NULL DEFAULT '';
        """,
    ),
)


def migrate(conn: Any) -> int:
    """Bring the schema up to date on the psycopg2 connection `conn`; the version reached."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    conn.commit()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS cliproxy_schema ("
                " version INTEGER PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT coalesce(max(version), 0) FROM cliproxy_schema")
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            for version, sql in MIGRATIONS:
                if version <= current:
                    continue
                cur.execute(sql)
                cur.execute("INSERT INTO cliproxy_schema (version) VALUES (%s)", (version,))
                current = version
        conn.commit()
        return current
    except BaseException:
        conn.rollback()
        raise
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.commit()
