# -*- test-case-name: tests.store.test_store_config -*-
"""`store:` (ours, after CLIProxyAPI's PGSTORE_DSN): the shared PostgreSQL store."""

from __future__ import annotations

from ._fields import Section
from .model import StoreConfig

#: accepted spellings of `store.type`
STORE_TYPES = {"postgres": "postgres", "postgresql": "postgres", "pg": "postgres"}


def read_store(sec: Section) -> StoreConfig:
    """The `store` section; absent means no store (auth-dir and config file only)."""
    if not sec.has("type") and not sec.has("dsn"):
        return StoreConfig(optional=sec.boolean("optional", False))
    kind = sec.choice("type", "postgres", STORE_TYPES)
    dsn = sec.string("dsn")
    if dsn and not (dsn.startswith(("postgres://", "postgresql://")) or "=" in dsn):
        raise sec.error(
            "dsn", "expected a PostgreSQL URL (postgresql://user@host/db) or 'key=value' pairs"
        )
    days = sec.integer("usage-retention-days", 30, minimum=1)
    retention = sec.duration("usage-retention", days * 86400.0)
    if retention <= 0:
        raise sec.error("usage-retention", 'must be positive (such as "720h")')
    return StoreConfig(
        type=kind,
        dsn=dsn,
        optional=sec.boolean("optional", False),
        usage_retention_seconds=retention,
    )
