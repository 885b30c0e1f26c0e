# -*- test-case-name: tests.formats.test_requests_claude -*-
"""Anthropic Messages request bodies <-> the intermediate representation.

Claude Code specifics accepted on input: `{"role": "system"}` entries inside `messages`
(a user `<system-reminder>` turn of their own for other targets: ir.system_reminder),
`thinking: {"type": "adaptive"}` with `output_config.effort`, and `context_management`
(Claude-only: dropped for other targets).
"""

from __future__ import annotations

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONArray, JSONObject
from cliproxy.formats.requests import thinking
from cliproxy.formats.requests._wire import (
    args_object,
    as_int,
    as_list,
    as_number,
    as_str,
    content_items,
    decode_text_document,
    get,
    json_text,
    list_or_empty,
    media_fallback_text,
    mime_from_name,
    signature_for,
    stop_list,
)
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import (
    Conversation,
    Media,
    Message,
    Part,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    call_names,
    coalesce,
    hoist_system,
    system_reminder,
)
from cliproxy.formats.requests.names import claude_tool_id
from cliproxy.formats.requests.schema import object_schema

DEFAULT_MAX_TOKENS = 32000
_ATTRIBUTION = "x-anthropic-billing-header:"
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# ---- parsing ------------------------------------------------------------------------------


def parse(body: JSONObject) -> Conversation:
    """A Messages request as a Conversation. Unknown block types are dropped."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages must be an array")
    conv = Conversation(system=_parse_system(body.get("system")))
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise TranslationError(f"messages[{i}] must be an object")
        role = msg.get("role")
        parts = parse_blocks(msg.get("content"), f"messages[{i}].content")
        if role == "system":
            texts = [p.text for p in parts if isinstance(p, Text)]
            reminder = system_reminder([t for t in texts if not _attribution(t)])
            if reminder is not None:
                conv.messages.append(reminder)
        elif role == "assistant":
            conv.messages.append(
                Message("assistant", [p for p in parts if not isinstance(p, ToolResult)])
            )
        elif role == "user":
            conv.messages.append(
                Message("user", [p for p in parts if not isinstance(p, (ToolCall, Thinking))])
            )
    names = call_names(conv.messages)
    for msg in conv.messages:
        for part in msg.parts:
            if isinstance(part, ToolResult) and part.name is None:
                part.name = names.get(part.id)

    conv.tools = parse_tools(as_list(body.get("tools"), "tools"))
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        choice = {"type": choice}
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("auto", "none"):
            conv.tool_choice = ToolChoice(kind)
        elif kind == "any":
            conv.tool_choice = ToolChoice("required")
        elif kind == "tool" and as_str(choice.get("name")):
            name = choice["name"]
            if name in _web_search_names(body.get("tools")):
                name = "web_search"  # the IR's name for the server-side search tool
            conv.tool_choice = ToolChoice("tool", name)
        if choice.get("disable_parallel_tool_use") is True:
            conv.parallel_tool_calls = False
    conv.max_tokens = as_int(body.get("max_tokens"))
    conv.temperature = as_number(body.get("temperature"))
    conv.top_p = as_number(body.get("top_p"))
    conv.top_k = as_int(body.get("top_k"))
    conv.stop = stop_list(body.get("stop_sequences"))
    conv.user = as_str(get(body.get("metadata"), "user_id"))
    conv.service_tier = _service_tier(body)
    fmt = get(body.get("output_config"), "format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        conv.response_format = ResponseFormat(
            "json_schema", None, schema if isinstance(schema, dict) else None
        )
    conv.reasoning = thinking.read(Format.CLAUDE, body)
    return conv


def _service_tier(body: JSONObject) -> str | None:
    """OpenAI's `priority` tier for Claude's fast mode (`speed: fast`, or a `fast`/`priority`
    tier as some clients spell it); Anthropic's own tiers (`auto`, `standard_only`) have no
    OpenAI counterpart."""
    tier = as_str(body.get("service_tier"))
    if body.get("speed") == "fast" or (tier or "").strip().lower() in ("fast", "priority"):
        return "priority"
    return None


def _web_search_names(tools: JSON) -> set[str]:
    """The names the client gave its server-side web search tools."""
    return {
        name
        for t in list_or_empty(tools)
        if isinstance(t, dict)
        and str(t.get("type", "")).startswith("web_search_")
        and (name := as_str(t.get("name")))
    }


def _parse_system(system: JSON) -> list[Text]:
    if isinstance(system, str):
        return [Text(system)] if system else []
    out: list[Text] = []
    if isinstance(system, list):
        for block in system:
            text = block.get("text") if isinstance(block, dict) else block
            if isinstance(text, str) and text and not _attribution(text):
                out.append(Text(text))
    return out


def _attribution(text: str) -> bool:
    """Claude Code's billing attribution line, which means nothing to other providers."""
    return text.lstrip().startswith(_ATTRIBUTION)


def parse_blocks(content: JSON, where: str) -> list[Part]:
    parts: list[Part] = []
    # A bare string becomes one string item, which _parse_block reads as text.
    for block in content_items(content, where):
        parts.extend(_parse_block(block))
    return parts


def _parse_block(block: JSON) -> list[Part]:
    if isinstance(block, str):
        return [Text(block)] if block else []
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return [Text(text)] if isinstance(text, str) and text else []
    if kind in ("image", "document"):
        return _parse_source(kind, block)
    if kind == "tool_use":
        tool_id, name = as_str(block.get("id")), as_str(block.get("name"))
        if not tool_id or not name:
            return []
        raw = block.get("input")
        return [ToolCall(tool_id, name, json_text(raw if isinstance(raw, dict) else {}))]
    if kind == "tool_result":
        tool_id = as_str(block.get("tool_use_id"))
        if not tool_id:
            return []
        content = [
            p
            for p in parse_blocks(block.get("content"), "tool_result.content")
            if isinstance(p, (Text, Media))
        ]
        return [ToolResult(tool_id, None, content, block.get("is_error") is True)]
    if kind == "thinking":
        text = block.get("thinking")
        return [Thinking(text if isinstance(text, str) else "", as_str(block.get("signature")))]
    if kind == "redacted_thinking" and as_str(block.get("data")):
        return [Thinking("", None, redacted=block["data"])]
    # server_tool_use, web_search_tool_result, search_result, container_upload...: dropped
    return []


def _parse_source(kind: str, block: JSONObject) -> list[Part]:
    source = block.get("source")
    if not isinstance(source, dict):
        return []
    title = as_str(block.get("title"))
    stype = source.get("type")
    if stype == "base64" and as_str(source.get("data")):
        mime = as_str(source.get("media_type"))
        return [Media(kind, mime, data=source["data"], filename=title)]
    if stype == "url" and as_str(source.get("url")):
        url = source["url"]
        mime = mime_from_name(url) or ("application/pdf" if kind == "document" else None)
        return [Media(kind, mime, url=url, filename=title)]
    if stype == "file" and as_str(source.get("file_id")):
        return [Media(kind, file_id=source["file_id"], filename=title)]
    if stype == "text" and as_str(source.get("data")):
        return [Text(source["data"])]
    if stype == "content":
        return [p for p in parse_blocks(source.get("content"), "document") if isinstance(p, Text)]
    return []


def parse_tools(tools: JSONArray) -> list[Tool]:
    out: list[Tool] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        name = as_str(tool.get("name"))
        if isinstance(kind, str) and kind.startswith("web_search_"):
            options = {
                k: tool[k]
                for k in ("max_uses", "allowed_domains", "blocked_domains", "user_location")
                if k in tool
            }
            out.append(Tool("web_search", kind="web_search", options=options))
        elif kind in (None, "custom") and name:
            schema = tool.get("input_schema")
            out.append(
                Tool(
                    name,
                    as_str(tool.get("description")) or "",
                    schema if isinstance(schema, dict) else None,
                )
            )
        # Anthropic-defined tools (bash, text_editor, computer, code_execution, ...) run on
        # Anthropic's side or need its client contract: nothing another provider can run.
    return out


# ---- emitting -----------------------------------------------------------------------------


def emit(
    conv: Conversation, *, model: str, stream: bool, caps: thinking.ModelCaps | None
) -> JSONObject:
    """A Messages request for `conv`."""
    system, messages = hoist_system(conv)
    out: list[JSONObject] = []
    for msg in coalesce(messages):
        if msg.role == "user":
            blocks = _user_blocks(msg.parts)
        else:
            blocks = _assistant_blocks(msg.parts)
        if not blocks:
            continue
        if out and out[-1]["role"] == msg.role:
            merged = out[-1]["content"] + blocks
            if msg.role == "user":
                merged.sort(key=lambda b: b.get("type") != "tool_result")
            out[-1]["content"] = merged
        else:
            out.append({"role": msg.role, "content": blocks})

    max_tokens = conv.max_tokens
    if max_tokens is None:
        # Claude requires max_tokens; stay within the model's limit when the catalog knows it
        limit = caps.max_output if caps is not None else None
        max_tokens = min(DEFAULT_MAX_TOKENS, limit) if limit else DEFAULT_MAX_TOKENS
    body: JSONObject = {"model": model, "max_tokens": max_tokens, "messages": out}
    system_blocks = [_cached({"type": "text", "text": t.text}, t) for t in system if t.text]
    if system_blocks:
        body["system"] = system_blocks
    body["stream"] = stream
    tools = [_emit_tool(t) for t in conv.tools]
    if tools:
        body["tools"] = tools
        choice = _emit_tool_choice(conv)
        if choice is not None:
            body["tool_choice"] = choice
    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    elif conv.top_p is not None:
        # recent Claude models refuse temperature and top_p together; temperature wins
        body["top_p"] = conv.top_p
    if conv.top_k is not None:
        body["top_k"] = conv.top_k
    if conv.stop:
        body["stop_sequences"] = list(conv.stop)
    if conv.user:
        body["metadata"] = {"user_id": conv.user}
    rf = conv.response_format
    if rf is not None and rf.type == "json_schema" and rf.schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.schema}}
    thinking.emit(Format.CLAUDE, body, conv.reasoning, caps)
    return body


def _emit_tool_choice(conv: Conversation) -> JSONObject | None:
    choice = conv.tool_choice
    out: JSONObject | None = None
    if choice is not None:
        if choice.mode == "required":
            out = {"type": "any"}
        elif choice.mode == "tool" and choice.name:
            out = {"type": "tool", "name": choice.name}
        elif choice.mode in ("auto", "none"):
            out = {"type": choice.mode}
    if conv.parallel_tool_calls is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def _cached(block: JSONObject, part: Text | Media | ToolResult | Tool) -> JSONObject:
    """`block` with the client's `cache_control` breakpoint, if it set one on `part`."""
    if part.cache is not None:
        block["cache_control"] = dict(part.cache)
    return block


def _user_blocks(parts: list[Part]) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    for part in parts:
        if isinstance(part, ToolResult):
            blocks.append(_cached(_tool_result(part), part))
        elif isinstance(part, Text):
            if part.text:
                blocks.append(_cached({"type": "text", "text": part.text}, part))
        elif isinstance(part, Media):
            blocks.append(_cached(_media_block(part), part))
    return blocks


def _tool_result(result: ToolResult) -> JSONObject:
    content = [
        _media_block(p) if isinstance(p, Media) else {"type": "text", "text": p.text}
        for p in result.content
        if not isinstance(p, Text) or p.text
    ]
    block: JSONObject = {"type": "tool_result", "tool_use_id": claude_tool_id(result.id)}
    if content:
        if len(content) == 1 and content[0]["type"] == "text":
            block["content"] = content[0]["text"]
        else:
            block["content"] = content
    if result.is_error:
        block["is_error"] = True
    return block


def _media_block(media: Media) -> JSONObject:
    if media.kind == "image" and (media.mime in _IMAGE_TYPES or media.data is None):
        if media.data is not None:
            source = {"type": "base64", "media_type": media.mime, "data": media.data}
            return {"type": "image", "source": source}
        if media.url:
            return {"type": "image", "source": {"type": "url", "url": media.url}}
    if media.kind == "document":
        if media.data is not None and media.mime == "application/pdf":
            source = {"type": "base64", "media_type": "application/pdf", "data": media.data}
            return _document(source, media)
        text = decode_text_document(media)
        if text is not None:
            return _document({"type": "text", "media_type": "text/plain", "data": text}, media)
        if media.url and (media.mime in (None, "application/pdf")):
            return _document({"type": "url", "url": media.url}, media)
    return {"type": "text", "text": media_fallback_text(media).text}


def _document(source: JSONObject, media: Media) -> JSONObject:
    block: JSONObject = {"type": "document", "source": source}
    if media.filename:
        block["title"] = media.filename
    return block


def _assistant_blocks(parts: list[Part]) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    for part in parts:
        if isinstance(part, Thinking):
            if part.redacted:
                blocks.append({"type": "redacted_thinking", "data": part.redacted})
                continue
            # Claude checks signatures: only its own can be replayed.
            sig = signature_for("claude", part.signature)
            if sig:
                blocks.append({"type": "thinking", "thinking": part.text, "signature": sig})
        elif isinstance(part, Text):
            if part.text:
                blocks.append(_cached({"type": "text", "text": part.text}, part))
        elif isinstance(part, ToolCall):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": claude_tool_id(part.id),
                    "name": part.name,
                    "input": args_object(part.arguments),
                }
            )
        # media in an assistant turn: Claude's assistant content cannot hold it
    return blocks


def _emit_tool(tool: Tool) -> JSONObject:
    if tool.kind == "web_search":
        out: JSONObject = {"type": "web_search_20250305", "name": "web_search"}
        out.update(tool.options)
        return out
    fn: JSONObject = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    fn["input_schema"] = object_schema(tool.parameters)
    return _cached(fn, tool)


__all__ = ["DEFAULT_MAX_TOKENS", "emit", "parse", "parse_tools"]
