# -*- test-case-name: tests.formats.test_requests_tool_map -*-
"""Which client tool each upstream tool name stands for, so answers use the client's names.

translate_request gives an upstream the names it accepts: Gemini's character set and
length (names.gemini_function_names), the Responses API's 64 characters
(names.codex_short_names), and flat `<namespace>__<tool>` names for the tools a Responses
client declares inside `namespace` tools. The model then calls tools by those names.
`client_tools` rebuilds, from the client's request, the map the response translators use to
put the client's own names (and namespaces, and freeform tools) back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cliproxy.formats import Format
from cliproxy.formats.requests import claude, gemini, openai_chat, responses
from cliproxy.formats.requests._wire import as_list
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.names import (
    codex_short_names,
    gemini_function_name,
    gemini_function_names,
)
from cliproxy.formats.responses_side.ir import ClientTool


def _declared(src: Format, body: dict[str, Any]) -> list[tuple[str, ClientTool]]:
    """(flat name as the IR knows it, the client's tool) for each declared function tool."""
    if src is Format.OPENAI_RESPONSES:
        return [
            (flat, ClientTool(info["name"], info["namespace"], info["custom"]))
            for flat, info in responses.flat_tool_names(body).items()
        ]
    if src is Format.OPENAI_CHAT:
        tools = openai_chat.parse_tools(body.get("tools"))
    elif src is Format.CLAUDE:
        tools = claude.parse_tools(as_list(body.get("tools"), "tools"))
    elif src is Format.GEMINI:
        tools = gemini.parse_tools(as_list(gemini.unwrap(body).get("tools"), "tools"))
    else:
        return []
    return [(t.name, ClientTool(t.name)) for t in tools if t.kind == "function"]


def _renamer(dst: Format, flat_names: list[str]) -> Callable[[str], str]:
    """The name `dst`'s emitter gives each flat name (the same functions it calls)."""
    if dst is Format.GEMINI:
        unique = gemini_function_names(flat_names)
        return lambda name: unique.get(name) or gemini_function_name(name)
    if dst is Format.OPENAI_RESPONSES:
        short = codex_short_names(flat_names)
        return lambda name: short.get(name, name)
    return lambda name: name


def client_tools(src: Format, dst: Format, body: Any) -> dict[str, ClientTool]:
    """Upstream tool name -> the client's tool, for every name the client would not know.

    Empty when nothing was renamed (and always when `src` is `dst`: the body went through
    untouched). Never raises: a body the request side could not read has no tools to map.
    """
    if src is dst or not isinstance(body, dict):
        return {}
    try:
        declared = _declared(src, body)
    except (TranslationError, TypeError, ValueError, AttributeError, KeyError):
        return {}
    rename = _renamer(dst, [flat for flat, _ in declared])
    out: dict[str, ClientTool] = {}
    for flat, tool in declared:
        upstream = rename(flat)
        if upstream != tool.name or tool.namespace or tool.custom:
            out.setdefault(upstream, tool)  # first wins, as in the request's own map
    return out
