# -*- test-case-name: tests.reliability.test_client_errors -*-
"""Reading a client's JSON body with a documented nesting limit.

Python's `json` recursion, and every translator that walks a body recursively, fails with
`RecursionError` somewhere near 1000 levels: an HTML 500 if nothing catches it. Real requests
nest a few dozen levels at most (a tool schema inside a tool inside a request), so a body
deeper than `MAX_JSON_DEPTH` is refused up front with a 400 that says so.
"""

from __future__ import annotations

import re
from typing import Any

from cliproxy import jsonutil

#: The deepest nesting of objects and arrays a request body may have (README: "Limits").
MAX_JSON_DEPTH = 128

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")
_OPEN = frozenset(b"[{")


class BodyError(ValueError):
    """The body cannot be used; `str()` is the message for the client."""


def json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep `raw` nests, counting no further than `limit + 1` (strings are skipped)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0  # cannot be deeper than the limit: skip the scan on the common path
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        if m.group()[0] in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return (
        f"request body nests objects/arrays more than {limit} levels deep; "
        "flatten it (e.g. simplify the tool schema)"
    )


def load_json_body(raw: bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse a request body, or raise `BodyError` naming what is wrong and what to do."""
    if json_depth(raw, limit) > limit:
        raise BodyError(too_deep_message(limit))
    try:
        return jsonutil.loads(raw)
    except RecursionError:
        raise BodyError(too_deep_message(limit)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BodyError(f"request body is not valid JSON: {e}") from None
