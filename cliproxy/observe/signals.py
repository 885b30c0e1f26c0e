# -*- test-case-name: tests.observe.test_signals -*-
"""Process-wide counts fed by one-line hooks in lower floors, read by `/metrics`.

Any floor may import this module: it imports nothing of cliproxy. The streaming relay
calls `track_stream` for each client stream it starts (`cliproxy_open_streams`), and the
OAuth token holder calls `token_refreshed` when a refresh settles
(`cliproxy_token_refreshes_total{provider,result}`). The counts belong to the process (one
cliproxy per process in service; tests compare before and after).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["COUNTS", "ProcessCounts", "token_refreshed", "track_stream"]


class ProcessCounts:
    """Streams open now, and settled token refreshes by (provider, result)."""

    def __init__(self) -> None:
        self.open_streams = 0
        self.refreshes: dict[tuple[str, str], int] = {}

    def track_stream(self, result: Any) -> None:
        """Count `result` (a routing StreamResult) open until its `done` is first called."""
        self.open_streams += 1
        original: Callable[..., None] = result.done
        closed = [False]

        def done(*args: Any) -> None:
            if not closed[0]:
                closed[0] = True
                self.open_streams -= 1
            original(*args)

        result.done = done

    def token_refreshed(self, provider: str, ok: bool) -> None:
        key = (provider, "success" if ok else "failure")
        self.refreshes[key] = self.refreshes.get(key, 0) + 1


COUNTS = ProcessCounts()
track_stream = COUNTS.track_stream
token_refreshed = COUNTS.token_refreshed
