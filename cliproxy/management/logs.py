# -*- test-case-name: tests.management.test_logs -*-
"""`/logs`, `/request-error-logs` and `/request-log-by-id` (core.md §6.3): read the files of
`cliproxy.observe.logfiles` and `cliproxy.observe.requestlog`."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.management.resource import BadRequest, Endpoint, answer, error, query
from cliproxy.observe.logfiles import MAIN, log_dir, rotated
from cliproxy.observe.requestlog import error_logs

#: at most this many lines per GET /logs
MAX_LINES = 10000


def _line_time(line: str) -> int:
    try:
        return int(time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")))
    except ValueError:
        return 0


class _Logs(Endpoint):
    def __init__(self, store: ConfigStore, environ: Mapping[str, str]) -> None:
        super().__init__()
        self.store = store
        self.environ = environ

    @property
    def directory(self) -> str:
        """The logs directory; a config not read from a file has none (404)."""
        found = log_dir(self.store.current, self.environ)
        if not found:
            raise BadRequest("no logs directory: the config was not read from a file", 404)
        return found


class Logs(_Logs):
    """GET `?after=<unix>&limit=N`: application log lines; DELETE clears them."""

    def render_GET(self, request: Request) -> bytes:
        if not self.store.current.logging_to_file:
            raise BadRequest("logging to file disabled")
        after = _number(query(request, "after"), "after")
        limit = _number(query(request, "limit"), "limit") or MAX_LINES
        lines: list[str] = []
        for name in [*rotated(self.directory), MAIN]:
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                    lines.extend(line.rstrip("\n") for line in f)
            except OSError:
                continue
        if after:
            lines = [line for line in lines if _line_time(line) > after]
        lines = lines[-min(limit, MAX_LINES) :]
        latest = max((_line_time(line) for line in lines), default=0)
        return answer(
            request, {"lines": lines, "line-count": len(lines), "latest-timestamp": latest}
        )

    def render_DELETE(self, request: Request) -> bytes:
        removed = 0
        for name in rotated(self.directory):
            os.remove(os.path.join(self.directory, name))
            removed += 1
        main = os.path.join(self.directory, MAIN)
        if os.path.exists(main):
            with open(main, "r+b") as f:
                f.truncate(0)
        return answer(
            request, {"success": True, "message": "Logs cleared successfully", "removed": removed}
        )


def _number(raw: str | None, name: str) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit():
        raise BadRequest(f"invalid {name}")
    return int(raw)


class ErrorLogs(_Logs):
    """GET: `{"files":[{name,size,modified}]}` (empty while request-log is on)."""

    isLeaf = False

    def getChild(self, path: bytes, request: Request) -> IResource:
        return LogFile(self, lambda n: n == path.decode("utf-8", "replace"), "error-")

    def render_GET(self, request: Request) -> bytes:
        if self.store.current.request_log:
            return answer(request, {"files": []})
        files = []
        for name in error_logs(self.directory):
            st = os.stat(os.path.join(self.directory, name))
            files.append({"name": name, "size": st.st_size, "modified": int(st.st_mtime)})
        return answer(request, {"files": files})


class LogById(_Logs):
    """`/request-log-by-id/{id}`: the request log whose name ends in that id."""

    isLeaf = False

    def getChild(self, path: bytes, request: Request) -> IResource:
        wanted = path.decode("utf-8", "replace")
        return LogFile(self, lambda n: bool(wanted) and n.endswith(f"-{wanted}.log"), "")

    def render_GET(self, request: Request) -> bytes:
        return error(request, 404, "not found")


class LogFile(Resource):
    """One log file, found by `matches` among the directory's `*.log` files."""

    isLeaf = True

    def __init__(self, parent: _Logs, matches: Any, prefix: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.parent, self.matches, self.prefix = parent, matches, prefix

    def render_GET(self, request: Request) -> bytes:
        try:
            directory = self.parent.directory
        except BadRequest as e:
            return error(request, e.status, e.message)
        try:
            names = sorted(os.listdir(directory), reverse=True)
        except OSError:
            names = []
        for name in names:
            if name.endswith(".log") and name.startswith(self.prefix) and self.matches(name):
                if "/" in name or name.startswith("."):
                    continue
                with open(os.path.join(directory, name), "rb") as f:
                    body = f.read()
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                disposition = f'attachment; filename="{name}"'.encode()
                request.setHeader(b"content-disposition", disposition)
                return body
        return error(request, 404, "log file not found")


def logs_children(node: Resource, store: ConfigStore, environ: Mapping[str, str]) -> None:
    node.putChild(b"logs", Logs(store, environ))
    node.putChild(b"request-error-logs", ErrorLogs(store, environ))
    node.putChild(b"request-log-by-id", LogById(store, environ))


__all__ = ["logs_children"]
