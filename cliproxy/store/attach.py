# -*- test-case-name: tests.store.test_shared -*-
"""`attach`: connect one instance's pool, auth-dir and usage to the shared store."""

from __future__ import annotations

from collections.abc import Callable

from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.pool import CredentialPool
from cliproxy.store.cooldowns import SharedCooldowns
from cliproxy.store.shared import SharedStore
from cliproxy.store.tokens import SharedTokens

__all__ = ["attach"]


def attach(
    store: SharedStore, pool: CredentialPool, authdir: AuthDir, now: Callable[[], float]
) -> None:
    """Benches, token files (and usage) of this instance reach the others, theirs reach it."""
    SharedCooldowns(store, pool, now)
    SharedTokens(store, authdir)
