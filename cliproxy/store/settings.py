# -*- test-case-name: tests.store.test_store_config -*-
"""Which store to use: `store:` in the local config file, or `PGSTORE_DSN` (as CLIProxyAPI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cliproxy.config import Config

__all__ = ["StoreSettings", "redacted", "store_settings"]


@dataclass(frozen=True)
class StoreSettings:
    """A resolved store: the DSN (never logged whole) and how to treat its absence."""

    dsn: str = field(repr=False)
    optional: bool = False
    usage_retention_seconds: float = 30 * 86400.0


def store_settings(config: Config, environ: Mapping[str, str]) -> StoreSettings | None:
    """The store `config` asks for (None: the local auth-dir and config file only).

    `store.dsn` wins over `PGSTORE_DSN`; `PGSTORE_DSN` alone selects postgres.
    """
    section = config.store
    dsn = section.dsn or environ.get("PGSTORE_DSN", "").strip()
    if not section.type and not dsn:
        return None
    return StoreSettings(dsn, section.optional, section.usage_retention_seconds)


def redacted(dsn: str) -> str:
    """The DSN with its password hidden, for messages."""
    if "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, at, host = rest.rpartition("@")
        if at and ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}{at}{host}"
    parts = []
    for item in dsn.split():
        key, eq, _ = item.partition("=")
        parts.append(f"{key}=***" if eq and key.strip() == "password" else item)
    return " ".join(parts)
