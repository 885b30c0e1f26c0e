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
    out: list[str] = []
    for raw in path.split(b"/"):
        text = unquote_to_bytes(raw).decode("utf-8", "replace")
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if out:
                    out.pop()
                continue
            out.append(part)
    return tuple(out)
