# -*- test-case-name: tests.observe.test_logfiles -*-
"""Log files (core.md §7.4): the application log and the per-request logs.

Directory: `$WRITABLE_PATH/logs`, else `logs/` beside config.yaml (CLIProxyAPI uses the
working directory, which is `/` for a service), else `<auth-dir>/logs` when that is not
writable. A config that did not come from a file (tests, embedding) writes no log files
unless `WRITABLE_PATH` is set. Files are created 0600: request logs hold prompts.

`AppLog` is a log observer writing `main.log` while `logging-to-file` is on; past a segment
size it is renamed `main-<time>.log`, and the oldest of those go once all of them pass
`logs-max-total-size-mb` (0: no limit). `AppLogService` adds it to the global log publisher
while the daemon runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import IO

from twisted.application.service import Service
from twisted.logger import ILogObserver, LogEvent, eventAsText, globalLogPublisher
from zope.interface import implementer

from cliproxy.config import Config

MAIN = "main.log"
#: the largest main.log grows before it is rotated
SEGMENT_BYTES = 10 * 1024 * 1024


def log_dir(config: Config, environ: Mapping[str, str]) -> str:
    """The logs directory, or "" when there is none (no WRITABLE_PATH and no config file)."""
    writable = environ.get("WRITABLE_PATH", "").strip()
    if writable:
        return os.path.join(os.path.expanduser(writable), "logs")
    if not config.source_path:
        return ""
    base = os.path.dirname(os.path.abspath(os.path.expanduser(config.source_path)))
    candidate = os.path.join(base, "logs")
    if _writable(candidate) or not config.auth_dir:
        return candidate
    return os.path.join(os.path.expanduser(config.auth_dir), "logs")


def _writable(path: str) -> bool:
    probe = path if os.path.isdir(path) else os.path.dirname(path)
    return os.access(probe, os.W_OK)


def open_private(path: str, mode: str = "ab") -> IO[bytes]:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode)


def rotated(directory: str) -> list[str]:
    """The rotated application logs, oldest first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = [n for n in names if n.startswith("main-") and n.endswith(".log")]
    return sorted(found, key=lambda n: (_mtime(os.path.join(directory, n)), n))


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def timestamp_line(event: LogEvent) -> str | None:
    text = eventAsText(event, includeTimestamp=False, includeSystem=False)
    if not text:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("log_time", time.time())))
    level = getattr(event.get("log_level"), "name", "info")
    namespace = event.get("log_namespace", "-")
    return f"{when} [{level}] [{namespace}] {text}\n"


@implementer(ILogObserver)
class AppLog:
    """Writes log events to `main.log` while the live config says `logging-to-file`."""

    def __init__(self, config: Callable[[], Config], environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        self._file: IO[bytes] | None = None
        self._path = ""
        self._busy = False

    def __call__(self, event: LogEvent) -> None:
        config = self.config()
        if not config.logging_to_file or self._busy:
            self.close()
            return
        line = timestamp_line(event)
        if line is None:
            return
        self._busy = True  # a failure while writing logs must not log into itself
        try:
            self._write(config, line.encode("utf-8", "replace"))
        except OSError:
            self.close()
        finally:
            self._busy = False

    def _write(self, config: Config, data: bytes) -> None:
        directory = log_dir(config, self.environ)
        if not directory:
            return
        path = os.path.join(directory, MAIN)
        if self._file is None or path != self._path:
            self.close()
            self._file, self._path = open_private(path), path
        self._file.write(data)
        self._file.flush()
        if self._file.tell() >= SEGMENT_BYTES:
            self.rotate(config)

    def rotate(self, config: Config) -> None:
        """main.log becomes main-<time>.log; the oldest go past the total size."""
        self.close()
        directory = log_dir(config, self.environ)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = os.path.join(directory, f"main-{stamp}.log")
        n = 1
        while os.path.exists(target):
            n += 1
            target = os.path.join(directory, f"main-{stamp}-{n}.log")
        os.replace(os.path.join(directory, MAIN), target)
        prune_rotated(directory, _max_total(config))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _max_total(config: Config) -> int:
    value = config.raw.get("logs-max-total-size-mb", 0)
    return int(value) * 1024 * 1024 if isinstance(value, int) and value > 0 else 0


def prune_rotated(directory: str, max_total: int) -> list[str]:
    """Remove the oldest rotated logs until all application logs fit `max_total` bytes."""
    if max_total <= 0:
        return []
    names = rotated(directory)
    sizes = {n: _size(os.path.join(directory, n)) for n in names}
    total = sum(sizes.values()) + _size(os.path.join(directory, MAIN))
    removed = []
    for name in names:
        if total <= max_total:
            break
        os.remove(os.path.join(directory, name))
        total -= sizes[name]
        removed.append(name)
    return removed


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class AppLogService(Service):
    """Adds `AppLog` to the global log publisher while running."""

    def __init__(self, config: Callable[[], Config], environ: Mapping[str, str]) -> None:
        self.observer = AppLog(config, environ)

    def startService(self) -> None:
        Service.startService(self)
        globalLogPublisher.addObserver(self.observer)

    def stopService(self) -> None:
        globalLogPublisher.removeObserver(self.observer)
        self.observer.close()
        Service.stopService(self)
