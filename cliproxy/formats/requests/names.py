"""Tool names and tool-call ids as each upstream accepts them (translators.md §2.3).

The response side reverses these with the same functions, so both sides must agree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

NAME_LIMIT = 64

_GEMINI_BAD = re.compile(r"[^a-zA-Z0-9_.:-]")
_CLAUDE_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def gemini_function_name(name: str) -> str:
    """A function name Gemini accepts: `[a-zA-Z0-9_.:-]`, starting with a letter or `_`, <= 64."""
    if not name:
        return name
    out = _GEMINI_BAD.sub("_", name)
    if not (out[0].isascii() and (out[0].isalpha() or out[0] == "_")):
        out = "_" + out[: NAME_LIMIT - 1]
    return out[:NAME_LIMIT]


def openai_function_name(name: str) -> str:
    """A tool name Claude and OpenAI (Chat, Responses, Codex) accept: `^[a-zA-Z0-9_-]{1,64}$`.

    Too long, a `mcp__server__tool` name keeps `mcp__` and its tool part (as CLIProxyAPI does
    for Codex); any other is cut at 64.
    """
    return _short_candidate(_CLAUDE_ID_BAD.sub("_", name)) if name else name


def _unique_names(names: Iterable[str], fit: Callable[[str], str]) -> dict[str, str]:
    """Original -> fitted name, unique: upstreams refuse two tools of one name.

    Names that fit as they are keep them; the others get `fit`, with `_1`, `_2`, ... when
    that is already taken (two long names sharing their first 64 characters, `a.b` next to
    `a_b`).
    """
    names = list(dict.fromkeys(names))
    out = {name: name for name in names if name and fit(name) == name}
    used = set(out.values())
    for name in names:
        if name in out:
            continue
        base = candidate = fit(name)
        n = 0
        while candidate in used:
            n += 1
            suffix = f"_{n}"
            candidate = base[: NAME_LIMIT - len(suffix)] + suffix
        used.add(candidate)
        out[name] = candidate
    return out


def gemini_function_names(names: Iterable[str]) -> dict[str, str]:
    """Original -> unique Gemini name (gemini_function_name) for each declared tool."""
    return _unique_names(names, gemini_function_name)


def openai_function_names(names: Iterable[str]) -> dict[str, str]:
    """Original -> unique Claude/OpenAI name (openai_function_name) for each declared tool."""
    return _unique_names(names, openai_function_name)


def claude_tool_id(tool_id: str, fallback: str = "toolu_0") -> str:
    """A tool_use id Claude accepts (`^[a-zA-Z0-9_-]+$`)."""
    return _CLAUDE_ID_BAD.sub("_", tool_id) if tool_id else fallback


def codex_call_id(call_id: str) -> str:
    """A Responses call_id of at most 64 characters, stable for the same input."""
    if len(call_id) <= NAME_LIMIT:
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:16]
    return call_id[: NAME_LIMIT - 17] + "_" + digest


def _short_candidate(name: str) -> str:
    if len(name) <= NAME_LIMIT:
        return name
    if name.startswith("mcp__"):
        tail = name.rsplit("__", 1)[-1]
        return ("mcp__" + tail)[:NAME_LIMIT]
    return name[:NAME_LIMIT]


def codex_short_names(names: Iterable[str]) -> dict[str, str]:
    """Original -> shortened tool name for the Responses API's 64-character limit, unique."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        if name in out:
            continue
        candidate = _short_candidate(name)
        n = 0
        while candidate in used:
            n += 1
            suffix = f"_{n}"
            candidate = _short_candidate(name)[: NAME_LIMIT - len(suffix)] + suffix
        used.add(candidate)
        out[name] = candidate
    return out


def qualified_tool_name(namespace: str, child: str) -> str:
    """The flat name for a tool nested in a Responses `namespace` tool (as Go's §B does).

    `mcp__` names and names already carrying the namespace stay as they are; otherwise
    `<namespace>__<child>` (no doubled `__` when the namespace already ends with it).
    """
    if not namespace or child.startswith("mcp__") or child.startswith(namespace):
        return child
    if namespace.endswith("__"):
        return namespace + child
    return f"{namespace}__{child}"


def name_from_tool_id(tool_id: str) -> str | None:
    """The function name encoded in ids like `<name>-<n>` (what Gemini-upstream replies use)."""
    head, sep, _tail = tool_id.rpartition("-")
    return head if sep and head else None
