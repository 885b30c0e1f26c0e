"""The response-case assertion vocabulary of ../shared/conformance (its README), over what
the client receives: a JSON body (non-stream) or a list of SSE events (stream)."""

from __future__ import annotations

import json
from typing import Any

from tests.conformance.checks import _MISSING, _str, at

Event = tuple[str, Any]


def parse_events(raw: bytes) -> list[Event]:
    """The client's SSE answer as (type, data) pairs, `[DONE]` dropped."""
    events: list[Event] = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if not data or data == ["[DONE]"]:
            continue
        try:
            obj = json.loads("\n".join(data))
        except ValueError:
            obj = "\n".join(data)
        kind = name or (obj.get("type") if isinstance(obj, dict) else None) or ""
        events.append((str(kind), obj))
    return events


def _matches(sel: dict[str, Any], event: Event) -> bool:
    kind, data = event
    if "type" in sel and kind != sel["type"]:
        return False
    if "has" in sel and at(data, sel["has"]) in (_MISSING, None):
        return False
    if "nonempty" in sel and at(data, sel["nonempty"]) in (_MISSING, None, ""):
        return False
    return all(_str(at(data, p)) == v for p, v in (sel.get("where") or {}).items())


def value_ok(a: dict[str, Any], value: Any) -> bool:
    tests: dict[str, Any] = {
        "str": lambda w: _str(value) == w,
        "str_ne": lambda w: _str(value) != w,
        "num": lambda w: _num(value) == float(w),
        "bool": lambda w: value is w,
        "prefix": lambda w: _str(value).startswith(w),
        "len": lambda w: isinstance(value, list) and len(value) == w,
        "exists": lambda w: (value is not _MISSING) == w,
        "not_null": lambda w: (value not in (_MISSING, None)) == w,
        "absent": lambda w: (value is _MISSING) == w,
        "empty_or_null": lambda w: (value in (_MISSING, None, "")) == w,
    }
    return all(tests[k](w) for k, w in a.items() if k in tests)


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0 if value in (_MISSING, None) else float("nan")
    return float(value)


def check_body(a: dict[str, Any], body: Any, raw: str) -> bool:
    if "raw_contains" in a:
        return a["raw_contains"] in raw
    if "raw_not_contains" in a:
        return a["raw_not_contains"] not in raw
    return value_ok(a, at(body, a["path"]))


def check_stream(a: dict[str, Any], events: list[Event], raw: str) -> bool:
    """One stream assertion over the parsed events."""
    if "raw_contains" in a or "raw_not_contains" in a:
        return check_body(a, None, raw)
    if "last_type" in a:
        return bool(events) and events[-1][0] == a["last_type"]
    if "none" in a:
        return not any(_matches(a["none"], e) for e in events)
    if "none_after" in a:
        kinds = [k for k, _ in events]
        if a["none_after"] not in kinds:
            return True
        return not any(k in a["types"] for k in kinds[kinds.index(a["none_after"]) + 1 :])
    if "last_nonempty" in a:
        vals = [at(d, a["last_nonempty"]) for _, d in events]
        vals = [v for v in vals if v not in (_MISSING, None, "")]
        return bool(vals) and _str(vals[-1]) == a["str"]
    chosen = [
        e for e in events if _matches(a.get("pick") or a.get("count") or a.get("over") or {}, e)
    ]
    if "count" in a:
        return len(chosen) == a["num"] if "num" in a else len(chosen) >= a["num_ge"]
    if "concat" in a:
        parts = [at(d, a["concat"]) for _, d in chosen]
        return "".join(_str(p) for p in parts if p is not _MISSING) == a["str"]
    if "seq" in a:
        seq = [v for v in (at(d, a["seq"]) for _, d in chosen) if v is not _MISSING]
        if "eq" in a:
            return seq == a["eq"]
        return seq[: len(a["prefix_eq"])] == a["prefix_eq"]
    nth = a.get("nth", 0)
    if not -len(chosen) <= nth < len(chosen):
        return bool(a.get("or_none")) and not chosen
    return value_ok(a, at(chosen[nth][1], a["path"]))
