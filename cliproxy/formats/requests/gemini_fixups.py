# -*- test-case-name: tests.formats.test_requests_gemini -*-
"""Fixes a Gemini request needs even when the client already speaks Gemini."""

from __future__ import annotations

import copy

from cliproxy.formats.json_types import JSONObject


def backfill_function_response_names(body: JSONObject) -> JSONObject:
    """`body` with each empty `functionResponse.name` named after its call.

    Gemini refuses a `functionResponse` without a name. Some clients leave it empty; the
    n-th response of a user turn answers the n-th `functionCall` of the model turn before
    it. Returns `body` itself when nothing needs filling, else a copy.
    """
    contents = body.get("contents")
    if not isinstance(contents, list) or not _has_empty_name(contents):
        return body
    out = dict(body)
    out["contents"] = contents = copy.deepcopy(contents)
    calls: list[str] = []
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            continue
        names = [_name(p, "functionCall") for p in parts]
        if any(n is not None for n in names):
            calls = [n for n in names if n]
            continue
        n = 0
        for part in parts:
            response = part.get("functionResponse") if isinstance(part, dict) else None
            if not isinstance(response, dict):
                continue
            if not response.get("name") and n < len(calls):
                response["name"] = calls[n]
            n += 1
    return out


def _name(part: object, key: str) -> str | None:
    inner = part.get(key) if isinstance(part, dict) else None
    if not isinstance(inner, dict):
        return None
    name = inner.get("name")
    return name if isinstance(name, str) else ""


def _has_empty_name(contents: list[object]) -> bool:
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if _name(part, "functionResponse") == "":
                return True
    return False
