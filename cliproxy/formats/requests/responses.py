# -*- test-case-name: tests.formats.test_requests_responses -*-
"""OpenAI Responses request bodies <-> the intermediate representation; Codex fix-ups.

Codex specifics accepted on input: `namespace` tools (flattened to `<ns>__<tool>` functions,
names.qualified_tool_name), `custom` (freeform) tools (a function taking one string `input`),
tools declared in `additional_tools` input items, and `id`s on input items (ignored: the other
formats have no use for them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONArray, JSONObject
from cliproxy.formats.requests import thinking
from cliproxy.formats.requests._wire import (
    args_text,
    as_int,
    as_list,
    as_number,
    as_str,
    audio_format,
    audio_mime,
    data_url,
    default_filename,
    function_of,
    get,
    json_text,
    kind_of_mime,
    list_or_empty,
    media_fallback_text,
    media_from_url,
    mime_from_name,
    openai_response_format,
    signature_for,
    stop_list,
    synth_call_id,
)
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import (
    Conversation,
    Media,
    Message,
    Part,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    coalesce,
)
from cliproxy.formats.requests.names import codex_call_id, codex_short_names, qualified_tool_name
from cliproxy.formats.requests.schema import object_schema

_FREEFORM_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
    "required": ["input"],
}

# ---- parsing ------------------------------------------------------------------------------


def parse(body: JSONObject) -> Conversation:
    """A Responses request as a Conversation. Unknown item and part types are dropped."""
    conv = Conversation()
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        conv.system.append(Text(instructions))
    names: dict[str, str] = {}
    extra_tools: JSONArray = []
    calls = 0
    for i, item in enumerate(_input_items(body.get("input"))):
        if not isinstance(item, dict):
            raise TranslationError(f"input[{i}] must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        where = f"input[{i}]"
        if kind == "message":
            conv.messages.append(_parse_message(item, where))
        elif kind in ("function_call", "custom_tool_call"):
            call = _parse_call(item, calls)
            calls += 1
            names[call.id] = call.name
            conv.messages.append(Message("assistant", [call]))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = as_str(item.get("call_id")) or ""
            content = _parse_output(item.get("output"), f"{where}.output")
            conv.messages.append(
                Message("user", [ToolResult(call_id, names.get(call_id), content)])
            )
        elif kind == "reasoning":
            conv.messages.append(Message("assistant", [_parse_reasoning(item)]))
        elif kind == "additional_tools":
            extra_tools.extend(as_list(item.get("tools"), f"{where}.tools"))
        # item_reference, web_search_call, local_shell_call, ...: nothing to carry

    conv.tools = parse_tools(as_list(body.get("tools"), "tools") + extra_tools)
    conv.tool_choice = _parse_tool_choice(body.get("tool_choice"))
    _read_settings(conv, body)
    conv.reasoning = thinking.read(Format.OPENAI_RESPONSES, body)
    return conv


def _input_items(raw: JSON) -> JSONArray:
    """`input` as a list of items: a string is one user message."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if raw is None:
        return []
    if isinstance(raw, list):
        return raw
    raise TranslationError("input must be a string or an array")


def _parse_call(item: JSONObject, ordinal: int) -> ToolCall:
    """A `function_call` or freeform `custom_tool_call` item (its input becomes `{"input"}`)."""
    name = as_str(item.get("name")) or ""
    namespace = as_str(item.get("namespace"))
    if namespace:
        name = qualified_tool_name(namespace, name)
    if item.get("type") == "custom_tool_call":
        text = item.get("input")
        args = json_text({"input": text if isinstance(text, str) else ""})
    else:
        args = args_text(item.get("arguments"))
    call_id = (
        as_str(item.get("call_id")) or as_str(item.get("id")) or synth_call_id(ordinal, name, args)
    )
    return ToolCall(call_id, name, args)


def _read_settings(conv: Conversation, body: JSONObject) -> None:
    """Sampling, limits and output format from the top level of the body into `conv`."""
    if isinstance(body.get("parallel_tool_calls"), bool):
        conv.parallel_tool_calls = body["parallel_tool_calls"]
    conv.max_tokens = as_int(body.get("max_output_tokens"))
    conv.temperature = as_number(body.get("temperature"))
    conv.top_p = as_number(body.get("top_p"))
    # not in the Responses API, but CLIProxyAPI reads it and some clients send it
    conv.stop = stop_list(get(body, "stop_sequences", "stop"))
    conv.user = as_str(body.get("user")) or as_str(body.get("safety_identifier"))
    conv.response_format = openai_response_format(get(body.get("text"), "format"), nested=False)
    conv.service_tier = as_str(body.get("service_tier"))


def _parse_message(item: JSONObject, where: str) -> Message:
    role = item.get("role")
    parts = parse_parts(item.get("content"), f"{where}.content")
    if role in ("system", "developer"):
        return Message("system", [p for p in parts if isinstance(p, Text)])
    if role == "assistant":
        return Message("assistant", [p for p in parts if isinstance(p, Text)])
    return Message("user", parts)


def parse_parts(content: JSON, where: str) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or an array")
    parts: list[Part] = []
    for item in content:
        part = _parse_part(item)
        if part is not None:
            parts.append(part)
    return parts


def _parse_part(item: JSON) -> Part | None:
    if isinstance(item, str):
        return Text(item) if item else None
    if not isinstance(item, dict):
        return None
    kind = item.get("type", "input_text")
    if kind in ("input_text", "output_text", "text", "summary_text"):
        text = item.get("text")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "refusal":
        text = item.get("refusal")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "input_image":
        detail = as_str(item.get("detail"))
        url = get(item, "image_url", "url")
        if isinstance(url, dict):
            url = url.get("url")
        if as_str(url):
            return media_from_url("image", url, detail=detail)
        if as_str(item.get("file_id")):
            return Media("image", file_id=item["file_id"], detail=detail)
        return None
    if kind == "input_file":
        filename = as_str(item.get("filename"))
        if as_str(item.get("file_data")):
            return media_from_url("document", item["file_data"], filename=filename, bare_ok=True)
        if as_str(item.get("file_url")):
            return media_from_url("document", item["file_url"], filename=filename)
        if as_str(item.get("file_id")):
            mime = mime_from_name(filename)
            return Media(kind_of_mime(mime), mime, file_id=item["file_id"], filename=filename)
        return None
    if kind == "input_audio":
        audio = item.get("input_audio")
        if not isinstance(audio, dict):
            audio = item
        data = as_str(audio.get("data"))
        return Media("audio", audio_mime(audio.get("format")), data=data) if data else None
    return None


def _parse_output(output: JSON, where: str) -> list[Text | Media]:
    if isinstance(output, (str, list)) or output is None:
        return [p for p in parse_parts(output, where) if isinstance(p, (Text, Media))]
    return [Text(json_text(output))]


def _parse_reasoning(item: JSONObject) -> Thinking:
    texts = [
        s["text"]
        for s in item.get("summary") or []
        if isinstance(s, dict) and isinstance(s.get("text"), str)
    ]
    if not texts and isinstance(item.get("content"), list):
        texts = [
            c["text"]
            for c in item["content"]
            if isinstance(c, dict) and isinstance(c.get("text"), str)
        ]
    return Thinking("\n\n".join(texts), as_str(item.get("encrypted_content")))


def parse_tools(tools: JSONArray) -> list[Tool]:
    """Responses tools as IR tools: namespaces flattened, freeform tools as functions."""
    out: list[Tool] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type", "function")
        if kind == "namespace":
            ns = as_str(tool.get("name")) or ""
            for child in parse_tools(list_or_empty(tool.get("tools"))):
                if child.kind == "function":
                    child.name = qualified_tool_name(ns, child.name)
                out.append(child)
        elif kind == "function":
            fn = function_of(tool)
            name = as_str(fn.get("name"))
            if name:
                params = get(fn, "parameters", "parametersJsonSchema", "input_schema")
                out.append(
                    Tool(
                        name,
                        as_str(fn.get("description")) or "",
                        params if isinstance(params, dict) else None,
                    )
                )
        elif kind == "custom":
            name = as_str(tool.get("name"))
            if name:
                out.append(
                    Tool(name, as_str(tool.get("description")) or "", dict(_FREEFORM_PARAMETERS))
                )
        elif kind in ("web_search", "web_search_preview", "web_search_preview_2025_03_11"):
            if tool.get("external_web_access") is False:
                continue
            options: JSONObject = {}
            domains = get(tool.get("filters"), "allowed_domains")
            if isinstance(domains, list):
                options["allowed_domains"] = domains
            if isinstance(tool.get("user_location"), dict):
                options["user_location"] = tool["user_location"]
            out.append(Tool("web_search", kind="web_search", options=options))
        # file_search, code_interpreter, image_generation, tool_search, ...: server-side only
    return out


def _parse_tool_choice(choice: JSON) -> ToolChoice | None:
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            name = as_str(choice.get("name")) or as_str(get(choice.get("function"), "name"))
            return ToolChoice("tool", name) if name else None
        if kind == "allowed_tools":
            return ToolChoice("required" if choice.get("mode") == "required" else "auto")
    return None


class DeclaredTool(TypedDict):
    """How a Responses client declared a tool (see `flat_tool_names`)."""

    name: str
    namespace: str | None
    custom: bool  # a freeform (`custom`) tool


def flat_tool_names(body: JSONObject) -> dict[str, DeclaredTool]:
    """Flat tool name -> how the client declared it, to rebuild Codex items on the way back."""
    out: dict[str, DeclaredTool] = {}
    tools = list_or_empty(body.get("tools"))
    for item in list_or_empty(body.get("input")):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            tools = tools + list_or_empty(item.get("tools"))

    def visit(tool: JSON, namespace: str | None) -> None:
        if not isinstance(tool, dict):
            return
        kind = tool.get("type", "function")
        name = as_str(tool.get("name")) or as_str(get(tool.get("function"), "name"))
        if kind == "namespace":
            for child in list_or_empty(tool.get("tools")):
                visit(child, name or "")
        elif kind in ("function", "custom") and name:
            flat = qualified_tool_name(namespace, name) if namespace else name
            out.setdefault(flat, {"name": name, "namespace": namespace, "custom": kind == "custom"})

    for tool in tools:
        visit(tool, None)
    return out


# ---- emitting -----------------------------------------------------------------------------


def emit(
    conv: Conversation, *, model: str, stream: bool, caps: thinking.ModelCaps | None
) -> JSONObject:
    """A Responses request for `conv` (Codex-specific fix-ups are in codex_fixups)."""
    short = codex_short_names(t.name for t in conv.tools if t.kind == "function")

    def tool_name(name: str) -> str:
        return short.get(name) or codex_short_names([name])[name]

    items: list[JSONObject] = []
    if conv.system:
        items.append(_message("developer", [_text_part("developer", t) for t in conv.system]))
    for msg in coalesce(conv.messages):
        if msg.role == "system":
            texts = [_text_part("developer", p) for p in msg.parts if isinstance(p, Text)]
            if texts:
                items.append(_message("developer", texts))
        elif msg.role == "user":
            items.extend(_emit_user(msg.parts))
        else:
            items.extend(_emit_assistant(msg.parts, tool_name))

    body: JSONObject = {"model": model, "input": items, "stream": stream}
    tools = [_emit_tool(t, tool_name) for t in conv.tools]
    if tools:
        body["tools"] = tools
        if conv.tool_choice is not None:
            body["tool_choice"] = _emit_tool_choice(conv, conv.tool_choice, tool_name)
    if conv.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = conv.parallel_tool_calls
    if conv.max_tokens is not None:
        body["max_output_tokens"] = conv.max_tokens
    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    if conv.top_p is not None:
        body["top_p"] = conv.top_p
    if conv.user is not None:
        body["user"] = conv.user
    if conv.service_tier is not None:
        body["service_tier"] = conv.service_tier
    rf = conv.response_format
    if rf is not None:
        if rf.type == "json_schema" and rf.schema is not None:
            fmt: JSONObject = {
                "type": "json_schema",
                "name": rf.name or "response",
                "schema": rf.schema,
            }
            if rf.strict is not None:
                fmt["strict"] = rf.strict
            body["text"] = {"format": fmt}
        elif rf.type in ("json_object", "text"):
            body["text"] = {"format": {"type": rf.type}}
    thinking.emit(Format.OPENAI_RESPONSES, body, conv.reasoning, caps)
    return body


def _emit_tool_choice(
    conv: Conversation, choice: ToolChoice, tool_name: Callable[[str], str]
) -> JSON:
    if choice.mode != "tool":
        return choice.mode
    searches = {t.name for t in conv.tools if t.kind == "web_search"}
    functions = {t.name for t in conv.tools if t.kind == "function"}
    if choice.name in searches and choice.name not in functions:
        return {"type": "web_search"}  # forcing the server-side search, not a function
    return {"type": "function", "name": tool_name(choice.name or "")}


def _message(role: str, content: list[JSONObject]) -> JSONObject:
    return {"type": "message", "role": role, "content": content}


def _text_part(role: str, text: Text) -> JSONObject:
    return {"type": "output_text" if role == "assistant" else "input_text", "text": text.text}


def _emit_user(parts: list[Part]) -> list[JSONObject]:
    items: list[JSONObject] = []
    content: list[JSONObject] = []
    for part in parts:
        if isinstance(part, ToolResult):
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": codex_call_id(part.id),
                    "output": _output(part),
                }
            )
        elif isinstance(part, (Text, Media)):
            content.append(_input_part(part))
    if content:
        items.append(_message("user", content))
    return items


def _output(result: ToolResult) -> str | list[JSONObject]:
    parts = [_input_part(p) for p in result.content]
    if all(p["type"] == "input_text" for p in parts):
        text = "\n\n".join(p["text"] for p in parts)
        # no error flag in the Responses API: say it in the text
        return f"Error: {text}" if result.is_error else text
    return parts


def _input_part(part: Text | Media) -> JSONObject:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    if part.kind == "image" and (part.data is not None or part.url or part.file_id):
        out: JSONObject = {"type": "input_image"}
        if part.file_id:
            out["file_id"] = part.file_id
        else:
            out["image_url"] = data_url(part.mime, part.data) if part.data is not None else part.url
        out["detail"] = part.detail or "auto"
        return out
    if part.kind in ("document", "video") and (part.data is not None or part.url or part.file_id):
        out = {"type": "input_file"}
        if part.data is not None:
            out["file_data"] = data_url(part.mime, part.data)
            out["filename"] = part.filename or default_filename(part.mime)
        elif part.url:
            out["file_url"] = part.url
        else:
            out["file_id"] = part.file_id
            if part.filename:
                out["filename"] = part.filename
        return out
    if part.kind == "audio" and part.data is not None:
        return {
            "type": "input_audio",
            "input_audio": {"data": part.data, "format": audio_format(part.mime)},
        }
    return {"type": "input_text", "text": media_fallback_text(part).text}


def _emit_assistant(parts: list[Part], tool_name: Callable[[str], str]) -> list[JSONObject]:
    items: list[JSONObject] = []
    texts: list[JSONObject] = []

    def flush() -> None:
        if texts:
            items.append(_message("assistant", list(texts)))
            texts.clear()

    for part in parts:
        if isinstance(part, Text):
            texts.append(_text_part("assistant", part))
        elif isinstance(part, ToolCall):
            flush()
            items.append(
                {
                    "type": "function_call",
                    "call_id": codex_call_id(part.id),
                    "name": tool_name(part.name),
                    "arguments": part.arguments,
                }
            )
        elif isinstance(part, Thinking):
            # Only OpenAI's own encrypted reasoning can be replayed; other signatures would
            # be rejected, and unsigned text has nowhere to go.
            sig = signature_for("openai", part.signature)
            if sig:
                flush()
                summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                items.append({"type": "reasoning", "summary": summary, "encrypted_content": sig})
    flush()
    return items


def _emit_tool(tool: Tool, tool_name: Callable[[str], str]) -> JSONObject:
    if tool.kind == "web_search":
        out: JSONObject = {"type": "web_search"}
        if tool.options.get("allowed_domains"):
            out["filters"] = {"allowed_domains": tool.options["allowed_domains"]}
        if tool.options.get("user_location"):
            out["user_location"] = tool.options["user_location"]
        return out
    fn: JSONObject = {"type": "function", "name": tool_name(tool.name)}
    if tool.description:
        fn["description"] = tool.description
    fn["parameters"] = object_schema(tool.parameters)
    # The Responses API defaults to strict schemas, which most clients' schemas do not meet.
    fn["strict"] = False
    return fn


# ---- Codex -------------------------------------------------------------------------------

_CODEX_DROP = (
    "previous_response_id",
    "prompt_cache_options",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "context_management",
)


def codex_fixups(body: JSONObject) -> JSONObject:
    """A copy of a Responses body as the ChatGPT Codex backend accepts it (translators.md §H).

    The backend only streams, never stores, and refuses sampling and size parameters; it also
    wants `instructions` present and system messages spelled `developer`.
    """
    out = dict(body)
    for key in _CODEX_DROP:
        out.pop(key, None)
    if out.get("service_tier") != "priority":
        out.pop("service_tier", None)
    out["stream"] = True
    out["store"] = False
    # parallel calls on unless the client said otherwise (Codex CLI itself sends false for
    # models without them), and only the encrypted reasoning included, as Codex CLI asks
    out.setdefault("parallel_tool_calls", True)
    if not isinstance(out.get("instructions"), str):
        out["instructions"] = ""
    out["include"] = ["reasoning.encrypted_content"]
    if isinstance(out.get("reasoning"), dict) and out["reasoning"].get("effort") != "none":
        out["reasoning"] = {"summary": "auto", **out["reasoning"]}
    raw = out.get("input")
    if isinstance(raw, str):
        out["input"] = [_message("user", [{"type": "input_text", "text": raw}])]
    elif isinstance(raw, list):
        out["input"] = [_codex_item(item) for item in raw]
    if isinstance(out.get("tools"), list):
        out["tools"] = [_codex_tool(t) for t in out["tools"]]
    choice = out.get("tool_choice")
    if isinstance(choice, dict):
        choice = _codex_tool(choice)
        if isinstance(choice, dict) and isinstance(choice.get("tools"), list):
            choice = {**choice, "tools": [_codex_tool(t) for t in choice["tools"]]}
        out["tool_choice"] = choice
    return out


def _codex_item(item: JSON) -> JSON:
    """An input item as Codex takes it: `system` spelled `developer`, and no per-part
    `prompt_cache_breakpoint` hints (which the backend refuses; GitHub Copilot sends them)."""
    if not isinstance(item, dict):
        return item
    if item.get("role") == "system":
        item = {**item, "role": "developer"}
    content = item.get("content")
    if isinstance(content, list) and any(
        isinstance(p, dict) and "prompt_cache_breakpoint" in p for p in content
    ):
        parts = [
            {k: v for k, v in p.items() if k != "prompt_cache_breakpoint"}
            if isinstance(p, dict)
            else p
            for p in content
        ]
        item = {**item, "content": parts}
    return item


def _codex_tool(tool: JSON) -> JSON:
    """A built-in tool (or tool choice) under the name Codex knows: the `web_search_preview*`
    variants are `web_search` there."""
    if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_preview"):
        return {**tool, "type": "web_search"}
    return tool


__all__ = ["codex_fixups", "emit", "flat_tool_names", "parse", "parse_tools"]
