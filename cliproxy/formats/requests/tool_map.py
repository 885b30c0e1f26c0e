# -*- test-case-name: tests.formats.test_requests_tool_map -*-
"""Tool names each upstream accepts, and the way back to the tools the client declared.

Before a conversation is written for another format, `rename_tools` gives every tool a name
that format accepts: Gemini's `[a-zA-Z0-9_.:-]` (a letter or `_` first), Claude's and
OpenAI's `[a-zA-Z0-9_-]`, at most 64 characters everywhere, no two alike. Responses clients'
`namespace` tools arrive already flattened to `<namespace>__<tool>` by the parser. The model
then calls tools by those names; `client_tools` rebuilds, from the client's request, the map
the response translators use to put the client's own names (and namespaces, and freeform
tools) back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.requests import claude, gemini, openai_chat, responses
from cliproxy.formats.requests._wire import as_list
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import Conversation, ToolCall, ToolResult
from cliproxy.formats.requests.names import (
    gemini_function_name,
    gemini_function_names,
    openai_function_name,
    openai_function_names,
)
from cliproxy.formats.responses_side.ir import ClientTool


def upstream_namer(dst: Format, declared: list[str]) -> Callable[[str], str]:
    """The name `dst` gets for each tool name, given the names of the declared tools."""
    if dst is Format.GEMINI:
        table, fit = gemini_function_names(declared), gemini_function_name
    else:
        table, fit = openai_function_names(declared), openai_function_name
    return lambda name: table.get(name) or fit(name)


def rename_tools(dst: Format, conv: Conversation) -> None:
    """Rename, in place, declared tools, the tool choice and the calls in the history."""
    functions = [t for t in conv.tools if t.kind == "function"]
    rename = upstream_namer(dst, [t.name for t in functions])
    for tool in functions:
        tool.name = rename(tool.name)
    if conv.tool_choice is not None and conv.tool_choice.name:
        conv.tool_choice.name = rename(conv.tool_choice.name)
    for msg in conv.messages:
        for part in msg.parts:
            if isinstance(part, (ToolCall, ToolResult)) and part.name:
                part.name = rename(part.name)


def _declared(src: Format, body: JSONObject) -> list[tuple[str, ClientTool]]:
    """(flat name as the parser gives it, the client's tool) for each declared function."""
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
        assert_never(src)
    return [(t.name, ClientTool(t.name)) for t in tools if t.kind == "function"]


def client_tools(src: Format, dst: Format, body: JSON) -> dict[str, ClientTool]:
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
    if not declared:  # most requests declare no tools: nothing to map, no name table to build
        return {}
    rename = upstream_namer(dst, [flat for flat, _ in declared])
    out: dict[str, ClientTool] = {}
    for flat, tool in declared:
        upstream = rename(flat)
        if upstream != tool.name or tool.namespace or tool.custom:
            out.setdefault(upstream, tool)  # first wins, as in the request's own map
    return out
