# -*- test-case-name: tests.observe.test_logfiles -*-
"""Per-request log files (core.md §7.4).

With `request-log: true` every request but the management ones (`/v0/management`,
`/metrics`, `/management.html`) is written to `<path>-<time>-<id>.log` in the logs
directory: the client's request (line, headers, body), each upstream call made for it
(`=== API REQUEST ===`: method, URL, headers, body; `=== API RESPONSE ===`: status,
headers, body, or why none came) and what the client received (status, headers, body),
in CLIProxyAPI's order. With it off, a request answered with status >= 400 is written to
`error-<same name>.log`, of which the newest `error-logs-max-files` are kept. Secrets are
masked (auth headers, cookies, `?key=`-style parameters) and each body is capped at
`BODY_CAP` bytes.

The web site calls `wrote` for each body write and `finished` once per request.
"""

from __future__ import annotations

import os
import re
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from twisted.logger import Logger

from cliproxy.config import Config
from cliproxy.observe.logfiles import log_dir, open_private
from cliproxy.web.state import state_of

log = Logger()

BODY_CAP = 64 * 1024
SECRET_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"x-api-key",
        b"x-goog-api-key",
        b"x-management-key",
        b"cookie",
        b"set-cookie",
    }
)
SECRET_PARAMS = re.compile(r"(?i)([?&](?:key|api_key|auth_token|token|access_token)=)[^&]*")
NOT_LOGGED = (b"/v0/management", b"/metrics", b"/management.html")


def mask(value: str) -> str:
    """`sk-a****1111`; an auth scheme (`Bearer `) is kept in front."""
    scheme, sep, rest = value.partition(" ")
    if sep and scheme.isalpha():
        return f"{scheme} {mask(rest.strip())}"
    return value[:4] + "****" + value[-4:] if len(value) > 12 else "****"


def _headers(pairs: Any) -> list[str]:
    lines = []
    for name, values in sorted(pairs.getAllRawHeaders()):
        for v in values:
            text = v.decode("latin-1")
            if name.lower() in SECRET_HEADERS:
                text = mask(text)
            lines.append(f"{name.decode('latin-1')}: {text}")
    return lines


def _pairs(pairs: list[tuple[str, str]]) -> list[str]:
    return [
        f"{name}: {mask(value) if name.lower().encode('latin-1') in SECRET_HEADERS else value}"
        for name, value in pairs
    ]


def _raw_pairs(raw: list[tuple[bytes, list[bytes]]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, values in raw for v in values]


def masked_url(url: str) -> str:
    """`url` with `?key=`-style values masked."""
    return SECRET_PARAMS.sub(r"\1****", url)


def upstream_sections(exchanges: list[Any]) -> list[str]:
    """The `=== API REQUEST/RESPONSE ===` sections of each `routing.UpstreamExchange`."""
    lines: list[str] = []
    for n, ex in enumerate(exchanges, 1):
        lines += [
            "=== API REQUEST ===",
            f"Attempt: {n}",
            f"Upstream: {ex.method} {masked_url(ex.url)}",
            *_pairs(ex.headers),
            "",
            _capped(ex.body, ex.body_size),
            "",
            "=== API RESPONSE ===",
        ]
        if ex.status is None:
            lines += [f"No response: {ex.error or 'the call was cancelled'}", ""]
            continue
        lines += [
            f"Status: {ex.status}",
            *_pairs(_raw_pairs(ex.response_headers)),
            "",
            _capped(bytes(ex.response_body), ex.response_size),
            "",
        ]
    return lines


def _capped(body: bytes, total: int) -> str:
    text = body[:BODY_CAP].decode("utf-8", "replace")
    return text + (f"\n[... {total - BODY_CAP} more bytes not logged]" if total > BODY_CAP else "")


class RequestLogger:
    """Writes request and error logs for one site.

    Args:
        config: the live config (`request-log`, `error-logs-max-files`).
        environ: for `WRITABLE_PATH`.
    """

    def __init__(self, config: Callable[[], Config], environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        self._sent: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()

    def wrote(self, request: Any, data: bytes) -> None:
        if (request.code or 200) < 400 and not self.config().request_log:
            return  # only an error log could want it, and this answer is not an error
        entry = self._sent.setdefault(request, [b"", 0])
        if len(entry[0]) < BODY_CAP:
            entry[0] += data[: BODY_CAP - len(entry[0])]
        entry[1] += len(data)

    def finished(self, request: Any) -> None:
        sent = self._sent.pop(request, [b"", 0])
        path = (request.uri or b"").split(b"?", 1)[0]
        if path.startswith(NOT_LOGGED):
            return
        config = self.config()
        failed = (request.code or 0) >= 400
        if not config.request_log and not failed:
            return
        try:
            self._write(config, request, path, sent)
        except OSError as e:
            log.warn("could not write the request log: {error}", error=e)

    def _write(self, config: Config, request: Any, path: bytes, sent: list[Any]) -> None:
        directory = log_dir(config, self.environ)
        if not directory:
            return
        rid = re.sub(r"[^A-Za-z0-9]", "", state_of(request).request_id)[-8:] or "0"
        clean = re.sub(r"[^A-Za-z0-9._-]+", "-", path.decode("latin-1")).strip("-") or "root"
        stamp = time.strftime("%Y-%m-%dT%H%M%S")
        name = f"{clean[:80]}-{stamp}-{rid}.log"
        if not config.request_log:
            name = "error-" + name
        with open_private(os.path.join(directory, name), "wb") as f:
            f.write(self.render(request, sent).encode("utf-8", "replace"))
        if not config.request_log:
            keep = config.raw.get("error-logs-max-files", 10)
            prune_error_logs(directory, keep if isinstance(keep, int) else 10)

    def render(self, request: Any, sent: list[Any]) -> str:
        content = request.content
        body = b""
        if content is not None and not content.closed:  # closed: the client left (499)
            content.seek(0)
            body = content.read(BODY_CAP + 1)
        uri = masked_url((request.uri or b"").decode("latin-1"))
        parts = [
            "=== REQUEST INFO ===",
            f"Request-ID: {state_of(request).request_id}",
            f"Method: {request.method.decode('latin-1')}",
            f"URL: {uri}",
            f"Timestamp: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
            "",
            "=== HEADERS ===",
            *_headers(request.requestHeaders),
            "",
            "=== REQUEST BODY ===",
            _capped(body, len(body) if len(body) <= BODY_CAP else BODY_CAP + 1),
            "",
            *upstream_sections(state_of(request).upstream),
            "=== RESPONSE ===",
            f"Status: {request.code}",
            *_headers(request.responseHeaders),
            "",
            _capped(sent[0], sent[1]),
            "",
        ]
        return "\n".join(parts)


def error_logs(directory: str) -> list[str]:
    """The error log names, newest first."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith("error-") and n.endswith(".log")]
    except OSError:
        return []
    return sorted(names, key=lambda n: os.path.getmtime(os.path.join(directory, n)), reverse=True)


def prune_error_logs(directory: str, keep: int) -> None:
    for name in error_logs(directory)[max(keep, 0) :]:
        try:
            os.remove(os.path.join(directory, name))
        except OSError:
            pass
