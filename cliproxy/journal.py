# -*- test-case-name: tests.test_journal -*-
"""A twistd log observer for systemd's journal: `twistd3 --logger=cliproxy.journal.observer`.

Each line goes to standard output with a `<N>` syslog priority prefix, which journald reads
from a service's stdout (SyslogLevelPrefix=, on by default), so `journalctl -p warning`
shows warnings and errors only. No timestamp: the journal adds its own. A traceback, or any
message of several lines, becomes several journal lines with the same priority.

twistd (22.4 and later) imports the `--logger` name with `namedAny` and calls it with no
arguments before it redirects `sys.stdout` into the log, so `observer()` still sees the
real standard output.
"""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

from twisted.logger import ILogObserver, LogEvent, LogLevel, eventAsText
from zope.interface import implementer

#: Twisted's levels -> syslog priorities (sd-daemon(3): <7> debug ... <2> crit)
PRIORITIES = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}
DEFAULT_PRIORITY = 6


def priority(event: LogEvent) -> int:
    """The syslog priority of a Twisted log event (info when it has no level)."""
    level: Any = event.get("log_level")
    return PRIORITIES.get(level, DEFAULT_PRIORITY)


def format_event(event: LogEvent) -> bytes:
    """`<N>[system] message` lines for one event, traceback included; b"" for no text."""
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False, includeSystem=False)
    if not text.strip():
        return b""
    system = event.get("log_system") or event.get("log_namespace") or "-"
    prefix = f"<{priority(event)}>"
    lines = f"[{system}] {text}".rstrip("\n").split("\n")
    out = "".join(f"{prefix}{line.rstrip(chr(13))}\n" for line in lines)
    return out.encode("utf-8", "backslashreplace")


@implementer(ILogObserver)
class JournalObserver:
    """Writes each event as prefixed lines to a binary stream, flushed per event."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def __call__(self, event: LogEvent) -> None:
        data = format_event(event)
        if data:
            self._out.write(data)
            self._out.flush()


def observer() -> JournalObserver:
    """The `--logger` factory: an observer writing to this process's standard output."""
    return JournalObserver(sys.stdout.buffer)
