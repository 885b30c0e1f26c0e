# -*- test-case-name: tests.upstream.test_payload -*-
"""The part of gjson/sjson path syntax that `payload` rules use, on parsed JSON.

A path is keys joined by `.` (`generationConfig.thinkingConfig.thinkingBudget`); `\\.`
escapes a dot inside a key; a number indexes an array (`contents.0.role`); a query part
`#(type=="web_search")` picks the first array item it matches and `#(...)#` every one.
A query term compares an item's field: `==`, `!=`, `<`, `<=`, `>`, `>=`, `%` (wildcard
match) and `!%`, joined with `&&` and `||`; a bare field asks whether it is there.
Values are JSON literals (`"text"`, `12`, `true`, `null`).

`resolve` turns a path with queries into concrete paths (lists of keys and indexes); `get`,
`put` and `delete` work on one concrete path. Nothing here raises on a path that does not
fit the document: it is simply absent. `put` replaces a scalar in its way with an object,
as sjson does, and does nothing where an array would need a key.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MISSING", "delete", "get", "put", "resolve", "wildcard_match"]

#: what `get` returns for an absent path (distinct from JSON null)
MISSING: Any = object()

Step = str | int
_OPERATORS = ("==", "!=", "<=", ">=", "!%", "<", ">", "%")


def wildcard_match(pattern: str, text: str) -> bool:
    """Case-sensitive match where `*` stands for any run of characters (CLIProxyAPI's)."""
    pattern = pattern.strip()
    if not pattern:
        return False
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, text.strip(), re.DOTALL) is not None


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside quotes and parentheses, honouring `\\` escapes."""
    parts: list[str] = []
    start = depth = 0
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _key(part: str) -> str:
    return re.sub(r"\\(.)", r"\1", part)


def _query(part: str) -> tuple[str, bool] | None:
    """(query text, every match) for a `#(...)` / `#(...)#` part, else None."""
    if not part.startswith("#(") or not (part.endswith(")") or part.endswith(")#")):
        return None
    every = part.endswith("#")
    return part[2 : -2 if every else -1].strip(), every


def _children(node: Any) -> list[tuple[Step, Any]]:
    if isinstance(node, list):
        return list(enumerate(node))
    return []


def _step(node: Any, part: str) -> tuple[Step, Any]:
    """The concrete step for a plain part and the child it reaches (MISSING if none)."""
    if isinstance(node, list) and part.lstrip("-").isdigit():
        index = int(part)
        return index, node[index] if 0 <= index < len(node) else MISSING
    key = _key(part)
    if isinstance(node, dict):
        return key, node.get(key, MISSING)
    return key, MISSING


def resolve(doc: Any, path: str) -> list[list[Step]]:
    """Every concrete path `path` names in `doc` (one for a path without queries)."""
    path = path.strip().removeprefix(".")
    if not path:
        return []
    found: list[tuple[list[Step], Any]] = [([], doc)]
    for part in _split(path, "."):
        query = _query(part)
        following: list[tuple[list[Step], Any]] = []
        for steps, node in found:
            if query is None:
                step, child = _step(node, part)
                following.append(([*steps, step], child))
                continue
            for index, item in _children(node):
                if _matches(item, query[0]):
                    following.append(([*steps, index], item))
                    if not query[1]:
                        break
        found = following
        if not found:
            return []
    return [steps for steps, _ in found]


def get(doc: Any, steps: list[Step]) -> Any:
    """The value at a concrete path, or MISSING."""
    node = doc
    for step in steps:
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return MISSING
    return node


def put(doc: Any, steps: list[Step], value: Any) -> bool:
    """Set the value at a concrete path, creating objects on the way; False if blocked."""
    if not steps:
        return False
    node = doc
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(node, list) and isinstance(step, int):
            if step == -1 or step == len(node):  # sjson: -1 (or the length) appends
                node.append(value if last else {})
                step = len(node) - 1
            elif not 0 <= step < len(node):
                return False
            if last:
                node[step] = value
                return True
        elif isinstance(node, dict):
            key = str(step)
            if last:
                node[key] = value
                return True
            if not isinstance(node.get(key), dict | list):
                node[key] = {}
            step = key
        else:
            return False
        node = node[step]
    return False


def delete(doc: Any, steps: list[Step]) -> bool:
    """Remove the value at a concrete path; False when there was none."""
    if not steps:
        return False
    parent = get(doc, steps[:-1])
    last = steps[-1]
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        return True
    return False


# -- queries ---------------------------------------------------------------------------


def _matches(item: Any, query: str) -> bool:
    return any(
        all(_term(item, term.strip()) for term in _split(alternative, "&&"))
        for alternative in _split(query, "||")
    )


def _term(item: Any, term: str) -> bool:
    if not term:
        return False
    for op in _OPERATORS:
        at = _operator_at(term, op)
        if at >= 0:
            field, literal = term[:at].strip(), term[at + len(op) :].strip()
            value = _field(item, field)
            return value is not MISSING and _compare(value, op, _literal(literal))
    value = _field(item, term)
    return value is not MISSING and value is not None and value is not False


def _operator_at(term: str, op: str) -> int:
    """Where `op` first appears outside quotes (-1 if nowhere), longer operators first."""
    quote = ""
    for i, ch in enumerate(term):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif term.startswith(op, i):
            return i
    return -1


def _field(item: Any, field: str) -> Any:
    if not field:
        return item
    steps = resolve(item, field)
    return get(item, steps[0]) if steps else MISSING


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op in ("%", "!%"):
        hit = isinstance(value, str) and isinstance(literal, str) and wildcard_match(literal, value)
        return hit if op == "%" else not hit
    if op == "==":
        return _same(value, literal)
    if op == "!=":
        return not _same(value, literal)
    if isinstance(value, str) and isinstance(literal, str):
        pair: tuple[Any, Any] = (value, literal)
    elif _number(value) and _number(literal):
        pair = (value, literal)
    else:
        return False
    a, b = pair
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)
