# -*- test-case-name: tests.amp.test_management -*-
"""Request paths as the Resource tree sees them.

Twisted hands resources the path segments with %-escapes undone but `.`/`..` and empty
segments kept, so `/threads/../api/user` would reach the `threads` resource while meaning
`/api/user`. `CliproxySite` walks the tree on `normalise`d segments instead, so every
decision (auth bypass, localhost check, where to proxy) is made on the path that is used.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes


def normalise(raw_path: bytes) -> tuple[str, ...]:
    """Path segments with escapes undone, an encoded `/` splitting, and `.`/`..`/empty removed."""
    path = raw_path.split(b"?", 1)[0]
    parts: list[str]
    if b"%" not in path:
        # nothing escaped (nearly every request): one decode instead of one unquote per
        # segment; "/" never falls inside a UTF-8 sequence, so the parts are the same
        parts = path.decode("utf-8", "replace").split("/")
    else:
        parts = [
            part
            for raw in path.split(b"/")
            for part in unquote_to_bytes(raw).decode("utf-8", "replace").split("/")
        ]
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return tuple(out)
