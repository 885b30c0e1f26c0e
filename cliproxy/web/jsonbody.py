# -*- test-case-name: tests.reliability.test_client_errors -*-
"""Reading a client's JSON body with a documented nesting limit.

Python's `json` recursion, and every translator that walks a body recursively, fails with
`RecursionError` somewhere near 1000 levels: an HTML 500 if nothing catches it. Real requests
nest a few dozen levels at most (a tool schema inside a tool inside a request), so a body
deeper than `MAX_JSON_DEPTH` is refused with a 400 that says so, before anything walks it.

Large bodies are parsed on a worker thread (`cliproxy.routing.offload`); they are decoded a
member and an array element at a time, so that thread never holds the GIL for long.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

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
    try:
        body = _parse(raw)
    except RecursionError:
        raise BodyError(too_deep_message(limit)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BodyError(f"request body is not valid JSON: {e}") from None
    if raw.count(b"[") + raw.count(b"{") > limit and _depth_of(body, limit) > limit:
        raise BodyError(too_deep_message(limit))
    return body


#: bodies at least this large are decoded a member and an array element at a time
PIECEWISE_BYTES = 256 * 1024

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _parse(raw: bytes) -> Any:
    if len(raw) < PIECEWISE_BYTES:
        return json.loads(raw)
    try:
        return _object_in_pieces(raw.decode("utf-8"))
    except (ValueError, IndexError):
        # not a plain UTF-8 object, or not JSON: json's own answer, and its own message
        return json.loads(raw)


def _object_in_pieces(text: str) -> dict[str, Any]:
    """`json.loads(text)` for an object, decoded one member (and one element of a member
    that is an array) per call into the C decoder. Each call holds the GIL only briefly,
    so a worker thread decoding megabytes leaves the reactor thread its turns.

    Raises:
        ValueError, IndexError: not a JSON object (the caller asks `json.loads` why).
    """
    i = _skip(text, 0)
    if text[i] != "{":
        raise ValueError("not an object")
    out: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text[i] == "}":
        return _end(text, i + 1, out)
    while True:
        if text[i] != '"':
            raise ValueError("expected a member name")
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] != ":":
            raise ValueError("expected ':'")
        i = _skip(text, i + 1)
        if text[i] == "[":
            out[key], i = _array_in_pieces(text, i)
        else:
            out[key], i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == "}":
            return _end(text, i + 1, out)
        if text[i] != ",":
            raise ValueError("expected ',' or '}'")
        i = _skip(text, i + 1)


def _array_in_pieces(text: str, i: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return items, i + 1
    while True:
        item, i = _DECODER.raw_decode(text, i)
        items.append(item)
        i = _skip(text, i)
        if text[i] == "]":
            return items, i + 1
        if text[i] != ",":
            raise ValueError("expected ',' or ']'")
        i = _skip(text, i + 1)


def _skip(text: str, i: int) -> int:
    match = _SPACE.match(text, i)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _end(text: str, i: int, out: dict[str, Any]) -> dict[str, Any]:
    if _skip(text, i) != len(text):
        raise ValueError("extra data after the object")
    return out


def _depth_of(body: Any, limit: int) -> int:
    """How deep a parsed body nests, counting no further than `limit + 1` (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        values = node.values() if isinstance(node, dict) else node
        stack.extend((v, depth + 1) for v in values if isinstance(v, dict | list))
    return deepest if isinstance(body, dict | list) else 0


def load_json_object(raw: bytes, limit: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A request body that must be a JSON object (pure: safe on a worker thread).

    Raises:
        BodyError: empty, not JSON, too deep, or not an object.
    """
    if not raw.strip():
        raise BodyError("request body is empty; send JSON")
    body = load_json_body(raw, limit)
    if not isinstance(body, dict):
        raise BodyError("request body must be a JSON object")
    return body


def read_json_object(content: IO[bytes]) -> dict[str, Any]:
    """`load_json_object` of a whole buffered body, read here (on a worker thread, so a
    large body waiting for its turn is held on disk by Twisted, not in memory)."""
    content.seek(0)
    return load_json_object(content.read())
