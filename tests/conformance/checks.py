"""The assertion vocabulary of ../shared/conformance (see its README), over one request."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

_MISSING = object()


#: a gjson query on an array, `#(key=="value")`: its first element with that value
_QUERY = re.compile(r'^#\((\w+)=="(.*)"\)$')


def at(obj: Any, path: str) -> Any:
    """gjson-style dotted path: numeric parts index arrays; `#` is an array's length;
    `#(key=="value")` is the array's first element whose `key` is that string."""
    for part in re.findall(r"(?:[^.(]|\([^)]*\))+", path):
        if isinstance(obj, list):
            if part == "#":
                obj = len(obj)
                continue
            query = _QUERY.match(part)
            if query:
                key, want = query.groups()
                obj = next((e for e in obj if isinstance(e, dict) and e.get(key) == want), _MISSING)
                if obj is _MISSING:
                    return obj
                continue
            try:
                obj = obj[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return _MISSING
    return obj


def _str(value: Any) -> str:
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


_JSON_TYPES = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
}


def _json_type(value: Any, want: str) -> bool:
    if want == "null":
        return value is None
    if want == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[want])


def _last_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        last = value[-1]
        return str(last.get("text", "")) if isinstance(last, dict) else str(last)
    return ""


def _value_checks(a: dict[str, Any], value: Any, body: Any) -> list[str]:
    bad = []
    tests: dict[str, Any] = {
        "str": lambda w: _str(value) == w,
        "str_ne": lambda w: _str(value) != w,
        "num": lambda w: isinstance(value, (int, float)) and float(value) == float(w),
        "bool": lambda w: value is w,
        "eq": lambda w: value == w,
        "prefix": lambda w: _str(value).startswith(w),
        "len": lambda w: isinstance(value, list) and len(value) == w,
        "len_ge": lambda w: isinstance(value, list) and len(value) >= w,
        "len_le": lambda w: len(_str(value)) <= w,
        "is_array": lambda w: isinstance(value, list) == w,
        "is_object": lambda w: isinstance(value, dict) == w,
        "exists": lambda w: (value is not _MISSING) == w,
        "absent": lambda w: (value is _MISSING) == w,
        "json_type": lambda w: value is not _MISSING and _json_type(value, w),
        "same_as": lambda w: value is not _MISSING and value == at(body, w),
        "last_text": lambda w: _last_text(value) == w,
    }
    for key, want in a.items():
        if key in tests and not tests[key](want):
            bad.append(f"{a}: got {_str(value)[:200]!r}")
    return bad


def _header(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def check(
    a: dict[str, Any], *, body: Any, headers: dict[str, str], url: str, base: str
) -> list[str]:
    """Failures of one assertion (empty when it holds)."""
    if "header" in a:
        got = _header(headers, a["header"])
        ok = True
        if "str" in a:
            ok = got == a["str"]
        if a.get("absent"):
            ok = got is None
        if a.get("empty"):
            ok = not got
        if "contains" in a:
            ok = got is not None and a["contains"] in got
        return [] if ok else [f"{a}: header was {got!r}"]
    if "url_path" in a or "url_path_suffix" in a:
        path = urlsplit(url).path
        rel = path[len(urlsplit(base).path.rstrip("/")) :] if base else path
        ok = rel == a["url_path"] if "url_path" in a else rel.endswith(a["url_path_suffix"])
        return [] if ok else [f"{a}: path was {rel!r}"]
    if "query" in a:
        got = parse_qs(urlsplit(url).query).get(a["query"], [""])[0]
        return [] if got == a["str"] else [f"{a}: query was {got!r}"]
    if "method" in a:
        return []  # every call here is a POST
    if "not_contains" in a:
        raw = json.dumps(body, ensure_ascii=False)
        return [] if a["not_contains"] not in raw else [f"{a}: found in body"]
    if "key_order" in a:
        keys = [k for k in body if k in a["key_order"]]
        return [] if keys == a["key_order"] else [f"{a}: order was {keys}"]
    if "cache_control_count" in a:
        from cliproxy.formats.requests.claude_rules import count_breakpoints

        n = count_breakpoints(body)
        return [] if n == a["cache_control_count"] else [f"{a}: counted {n}"]
    return _value_checks(a, at(body, a["path"]), body)
