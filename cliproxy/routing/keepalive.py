# -*- test-case-name: tests.reliability.test_config_keys -*-
"""`nonstream-keepalive-interval` (core.md §1.7): newlines to a waiting non-streaming client.

While the router works on a non-streaming request (a long thinking turn, retry rounds), a
client or a proxy in between may give up on a connection that has sent nothing. Every
`interval` seconds a bare `\\n` is written; JSON allows leading whitespace, so the answer
still parses. The first newline commits the status (200) and headers, so an error that
comes later is written as the body of that 200, as CLIProxyAPI does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

T = TypeVar("T")


class NonStreamKeepAlive:
    """Writes `\\n` through `write` every `interval` seconds until `stop`.

    Args:
        clock: the reactor's time.
        write: writes bytes to the client.
        interval: seconds between newlines (> 0).
    """

    def __init__(self, clock: IReactorTime, write: Callable[[bytes], None], interval: float):
        self.written = 0
        self._write = write
        self._call = task.LoopingCall(self._tick)
        self._call.clock = clock
        self._call.start(interval, now=False)

    def _tick(self) -> None:
        self.written += 1
        self._write(b"\n")

    def stop(self, result: T) -> T:
        """Stop writing; passes `result` through (use as a Deferred callback)."""
        if self._call.running:
            self._call.stop()
        return result
