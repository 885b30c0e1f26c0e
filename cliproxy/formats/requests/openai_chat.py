# -*- test-case-name: tests.formats.test_requests_openai_chat -*-
"""OpenAI Chat Completions request bodies <-> the intermediate representation."""

from __future__ import annotations

from collections.abc import Callable

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.requests import gemini, thinking
from cliproxy.formats.requests._wire import (
    args_text,
    as_int,
    as_list,
    as_number,
    as_str,
    audio_format,
    audio_mime,
    content_items,
    data_url,
    default_filename,
    function_of,
    get,
    json_text,
    kind_of_mime,
    media_fallback_text,
    media_from_url,
    mime_from_name,
    openai_response_format,
    signature_for,
    signature_provider,
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
from cliproxy.formats.requests.schema import object_schema

# ---- parsing ------------------------------------------------------------------------------


def parse(body: JSONObject) -> Conversation:
    """A Chat Completions request as a Conversation. Unknown part types are dropped."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages must be an array")
    conv = Conversation()
    history = _CallHistory()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise TranslationError(f"messages[{i}] must be an object")
        message = _parse_message(msg, i, history)
        if message is not None:
            conv.messages.append(message)
    conv.tools = parse_tools(body.get("tools"))
    conv.tool_choice = _parse_tool_choice(body.get("tool_choice"))
    _read_settings(conv, body)
    conv.reasoning = thinking.read(Format.OPENAI_CHAT, body)
    return conv


def _parse_message(msg: JSONObject, i: int, history: _CallHistory) -> Message | None:
    """`messages[i]` as an IR message; a message-level `cache_control` (as Claude-minded
    clients send it) marks the message's last part."""
    message = _parse_role(msg, i, history)
    cache = cache_control(msg)
    if message is not None and cache is not None:
        last = next(
            (p for p in reversed(message.parts) if isinstance(p, Text | Media | ToolResult)),
            None,
        )
        if last is not None and last.cache is None:  # the part's own breakpoint wins
            last.cache = cache
    return message


def _parse_role(msg: JSONObject, i: int, history: _CallHistory) -> Message | None:
    """`messages[i]` as an IR message; None for roles the other formats have no use for."""
    role = msg.get("role")
    content = msg.get("content")
    where = f"messages[{i}].content"
    if role in ("system", "developer"):
        return Message("system", [p for p in parse_parts(content, where) if isinstance(p, Text)])
    if role == "user":
        return Message("user", parse_parts(content, where))
    if role == "assistant":
        return history.assistant(msg, i)
    if role == "tool":
        call_id = as_str(msg.get("tool_call_id")) or ""
        result = ToolResult(call_id, history.names.get(call_id), parse_result(content, where))
        return Message("user", [result])
    if role == "function":
        name = as_str(msg.get("name")) or ""
        result = ToolResult(history.answer_legacy(name), name, parse_result(content, where))
        return Message("user", [result])
    return None


class _CallHistory:
    """The tool calls of the assistant turns so far, for the tool messages that answer them."""

    def __init__(self) -> None:
        #: call id -> function name
        self.names: dict[str, str] = {}
        self._legacy_ids: dict[str, list[str]] = {}  # name -> ids of legacy function_call turns
        self._calls = 0

    def _call_id(self, given: str | None, name: str, args: str) -> str:
        """`given`, else a synthetic id; every call counts toward later synthetic ids."""
        call_id = given or synth_call_id(self._calls, name, args)
        self._calls += 1
        return call_id

    def assistant(self, msg: JSONObject, i: int) -> Message:
        """An assistant message: reasoning, text, then its tool calls (and a legacy call)."""
        parts: list[Part] = []
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append(Thinking(reasoning))
        where = f"messages[{i}].content"
        parts.extend(p for p in parse_parts(msg.get("content"), where) if isinstance(p, Text))
        for tc in as_list(msg.get("tool_calls"), f"messages[{i}].tool_calls"):
            fn = tc.get("function") if isinstance(tc, dict) else None
            name = as_str(fn.get("name")) if isinstance(fn, dict) else None
            if not name or not isinstance(fn, dict):
                continue
            args = args_text(fn.get("arguments"))
            call_id = self._call_id(as_str(tc.get("id")), name, args)
            self.names[call_id] = name
            parts.append(ToolCall(call_id, name, args, _thought_signature(tc)))
        legacy = msg.get("function_call")
        if isinstance(legacy, dict) and as_str(legacy.get("name")):
            name = legacy["name"]
            args = args_text(legacy.get("arguments"))
            call_id = self._call_id(None, name, args)
            self._legacy_ids.setdefault(name, []).append(call_id)
            parts.append(ToolCall(call_id, name, args))
        return Message("assistant", parts)

    def answer_legacy(self, name: str) -> str:
        """The id of the oldest unanswered legacy call of `name` (a role `function` answer)."""
        pending = self._legacy_ids.get(name) or []
        return pending.pop(0) if pending else synth_call_id(self._calls, name)


def _read_settings(conv: Conversation, body: JSONObject) -> None:
    """Sampling, limits and output format from the top level of the body into `conv`."""
    if isinstance(body.get("parallel_tool_calls"), bool):
        conv.parallel_tool_calls = body["parallel_tool_calls"]
    # both present: `max_tokens` wins (CLIProxyAPI reads them in that order)
    conv.max_tokens = as_int(body.get("max_tokens"))
    if conv.max_tokens is None:
        conv.max_tokens = as_int(body.get("max_completion_tokens"))
    # only the fields the body has are read (a fresh Conversation holds None for the rest)
    for name, read in _SAMPLING:
        value = body.get(name)
        if value is not None:
            setattr(conv, name, read(value))
    # Claude-minded clients name the end user in `metadata.user_id` (CLIProxyAPI keeps it)
    conv.user = as_str(body.get("user")) or as_str(get(body.get("metadata"), "user_id"))
    conv.response_format = openai_response_format(body.get("response_format"), nested=True)
    conv.service_tier = as_str(body.get("service_tier"))
    _gemini_generation_config(conv, body.get("generationConfig"))


#: Chat's sampling fields, which keep their names in the Conversation, and their readers
_SAMPLING: tuple[tuple[str, Callable[[JSON], JSON]], ...] = (
    ("temperature", as_number),
    ("top_p", as_number),
    ("top_k", as_int),
    ("stop", stop_list),
    ("n", as_int),
    ("seed", as_int),
    ("presence_penalty", as_number),
    ("frequency_penalty", as_number),
)

#: the settings a Chat body's Gemini-style `generationConfig` may supply
_GEMINI_SETTINGS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)


def _gemini_generation_config(conv: Conversation, gen: JSON) -> None:
    """The sampling settings of a Gemini `generationConfig` object inside a Chat body (a
    CLIProxyAPI extension some clients use), where the Chat fields do not set them. Its
    response schema is not read: `response_format` is the Chat way to ask for one."""
    if not isinstance(gen, dict):
        return
    extra = Conversation()
    gemini.read_generation_config(extra, gen)
    for name in _GEMINI_SETTINGS:
        if getattr(conv, name) is None:
            setattr(conv, name, getattr(extra, name))


def _thought_signature(tool_call: JSONObject) -> str | None:
    """A Gemini thought signature carried the way Gemini's OpenAI endpoint carries it."""
    for holder in (tool_call, tool_call.get("function")):
        google = get(get(holder, "extra_content"), "google")
        sig = get(google, "thought_signature") or get(
            holder, "thoughtSignature", "thought_signature"
        )
        if isinstance(sig, str) and sig:
            return sig
    return None


def parse_parts(content: JSON, where: str) -> list[Part]:
    """Message content (a string or an array of parts) as IR parts."""
    if type(content) is str:  # the common case, without the item loop
        return [Text(content)] if content else []
    parts: list[Part] = []
    # A bare string becomes one string item, which _parse_part reads as text.
    for item in content_items(content, where):
        part = _parse_part(item)
        if part is not None:
            parts.append(part)
    return parts


def _parse_part(item: JSON) -> Part | None:
    if isinstance(item, str):
        return Text(item) if item else None
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    part = _parse_content_part(item, kind)
    if isinstance(part, Text | Media):
        part.cache = cache_control(item)
    return part


def _parse_content_part(item: JSONObject, kind: JSON) -> Part | None:
    if kind in ("text", "input_text", "output_text", "refusal"):
        text = item.get("text") if kind != "refusal" else item.get("refusal")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "image_url":
        image = item.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = as_str(get(image, "detail"))
        file_id = as_str(get(image, "file_id"))
        if file_id and not url:  # an uploaded image, as Responses' input_image takes it
            return Media("image", file_id=file_id, detail=detail)
        return media_from_url("image", url, detail=detail)
    if kind == "video_url":  # not OpenAI's, but vLLM-style servers and CLIProxyAPI take it
        video = item.get("video_url")
        return media_from_url("video", video.get("url") if isinstance(video, dict) else video)
    if kind == "input_audio":
        audio = item.get("input_audio")
        data = as_str(get(audio, "data"))
        if not data:
            return None
        return Media("audio", audio_mime(get(audio, "format")), data=data)
    if kind == "file":
        f = item.get("file")
        if not isinstance(f, dict):
            return None
        filename = as_str(f.get("filename"))
        if as_str(f.get("file_data")):
            return media_from_url("document", f["file_data"], filename=filename, bare_ok=True)
        if as_str(f.get("file_id")):
            mime = mime_from_name(filename)
            return Media(kind_of_mime(mime), mime, file_id=f["file_id"], filename=filename)
        if as_str(f.get("file_url")):
            return media_from_url("document", f["file_url"], filename=filename)
    return None


def parse_result(content: JSON, where: str) -> list[Text | Media]:
    """A tool message's content: texts and images (other values become their JSON text)."""
    if isinstance(content, (str, list, dict)) or content is None:
        parts = parse_parts(content, where)
        return [p for p in parts if isinstance(p, (Text, Media))]
    return [Text(json_text(content))]


def parse_tools(tools: JSON) -> list[Tool]:
    out: list[Tool] = []
    for tool in as_list(tools, "tools"):
        if not isinstance(tool, dict):
            continue
        if tool.get("type", "function") == "function":
            fn = function_of(tool)
            name = as_str(fn.get("name"))
            if name:
                params = get(fn, "parameters", "parametersJsonSchema")
                out.append(
                    Tool(
                        name,
                        as_str(fn.get("description")) or "",
                        params if isinstance(params, dict) else None,
                        cache=cache_control(tool) or cache_control(fn),
                    )
                )
        elif "google_search" in tool or "googleSearch" in tool:
            # CLIProxyAPI accepts Gemini's search tool in Chat bodies.
            out.append(Tool("web_search", kind="web_search"))
    return out


def _parse_tool_choice(choice: JSON) -> ToolChoice | None:
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            name = as_str(get(choice.get("function"), "name")) or as_str(choice.get("name"))
            return ToolChoice("tool", name) if name else None
        if choice.get("type") == "allowed_tools":
            mode = get(choice.get("allowed_tools"), "mode")
            return ToolChoice("required" if mode == "required" else "auto")
    return None


# ---- emitting -----------------------------------------------------------------------------


def emit(
    conv: Conversation, *, model: str, stream: bool, caps: thinking.ModelCaps | None
) -> JSONObject:
    """A Chat Completions request for `conv`."""
    messages: list[JSONObject] = []
    if conv.system:
        messages.append({"role": "system", "content": _text_content(conv.system)})
    for msg in coalesce(conv.messages):
        if msg.role == "system":
            texts = [p for p in msg.parts if isinstance(p, Text)]
            if texts:
                messages.append({"role": "system", "content": _text_content(texts)})
        elif msg.role == "user":
            messages.extend(_emit_user(msg.parts))
        else:
            assistant = _emit_assistant(msg.parts)
            # a turn with nothing left to say (only another provider's hidden thoughts) is
            # left out rather than sent as an empty assistant message
            if assistant["content"] or len(assistant) > 2:
                messages.append(assistant)

    body: JSONObject = {"model": model, "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    tools = [_emit_tool(t) for t in conv.tools if t.kind == "function"]
    if tools:
        body["tools"] = tools
        choice = conv.tool_choice
        if choice is not None:
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice.name}}
                if choice.mode == "tool"
                else choice.mode
            )
        if conv.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = conv.parallel_tool_calls
    _put(body, "max_tokens", conv.max_tokens)
    _put(body, "temperature", conv.temperature)
    _put(body, "top_p", conv.top_p)
    # top_k is not OpenAI's, but CLIProxyAPI sends it and OpenAI-compatible servers take it.
    _put(body, "top_k", conv.top_k)
    if conv.stop:
        body["stop"] = list(conv.stop)
    _put(body, "n", conv.n)
    _put(body, "seed", conv.seed)
    _put(body, "presence_penalty", conv.presence_penalty)
    _put(body, "frequency_penalty", conv.frequency_penalty)
    _put(body, "user", conv.user)
    rf = conv.response_format
    if rf is not None:
        if rf.type == "json_schema" and rf.schema is not None:
            spec: JSONObject = {"name": rf.name or "response", "schema": rf.schema}
            if rf.strict is not None:
                spec["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif rf.type in ("json_object", "text"):
            body["response_format"] = {"type": rf.type}
    thinking.emit(Format.OPENAI_CHAT, body, conv.reasoning, caps)
    return body


def _put(body: JSONObject, key: str, value: JSON) -> None:
    if value is not None:
        body[key] = value


def _text_content(texts: list[Text]) -> str | list[JSONObject]:
    if len(texts) == 1:
        return texts[0].text
    return [{"type": "text", "text": t.text} for t in texts]


def _emit_user(parts: list[Part]) -> list[JSONObject]:
    out: list[JSONObject] = []
    rest: list[JSONObject] = []
    for part in parts:
        if isinstance(part, ToolResult):
            out.append({"role": "tool", "tool_call_id": part.id, "content": _result_content(part)})
        elif isinstance(part, (Text, Media)):
            rest.append(_user_part(part))
    if rest:
        if len(rest) == 1 and rest[0]["type"] == "text":
            out.append({"role": "user", "content": rest[0]["text"]})
        else:
            out.append({"role": "user", "content": rest})
    return out


def _result_content(result: ToolResult) -> str | list[JSONObject]:
    # An error flag has no place in a tool message: say it in the text instead.
    parts = [_user_part(p) for p in result.content]
    if result.is_error and not parts:
        return "Error"
    if all(p["type"] == "text" for p in parts):
        text = "\n\n".join(p["text"] for p in parts)
        return f"Error: {text}" if result.is_error else text
    return parts


def _user_part(part: Text | Media) -> JSONObject:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if part.kind == "image" and (part.data is not None or part.url):
        url = data_url(part.mime, part.data) if part.data is not None else part.url
        image: JSONObject = {"url": url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.kind == "video" and (part.data is not None or part.url):
        url = data_url(part.mime, part.data) if part.data is not None else part.url
        return {"type": "video_url", "video_url": {"url": url}}
    if part.kind == "audio" and part.data is not None:
        return {
            "type": "input_audio",
            "input_audio": {"data": part.data, "format": audio_format(part.mime)},
        }
    if part.kind == "document" and (part.data is not None or part.file_id):
        f: JSONObject = {}
        if part.data is not None:
            f["file_data"] = data_url(part.mime, part.data)
            f["filename"] = part.filename or default_filename(part.mime)
        else:
            f["file_id"] = part.file_id
            if part.filename:
                f["filename"] = part.filename
        return {"type": "file", "file": f}
    if part.kind == "image" and part.file_id:
        return {"type": "file", "file": {"file_id": part.file_id}}
    fallback = media_fallback_text(part)
    return {"type": "text", "text": fallback.text}


def _emit_assistant(parts: list[Part]) -> JSONObject:
    texts = [p for p in parts if isinstance(p, Text)]
    calls = [p for p in parts if isinstance(p, ToolCall)]
    msg: JSONObject = {"role": "assistant"}
    if texts:
        msg["content"] = _text_content(texts)
    else:
        # null beside tool calls is what the OpenAI SDKs themselves send back
        msg["content"] = None if calls else ""
    # Unsigned thinking (a DeepSeek or Kimi answer a Claude client replays, with an empty
    # signature) goes back as reasoning_content, which those servers want with a tool-call
    # turn; another provider's signed thinking means nothing here.
    reasoning = [
        p.text
        for p in parts
        if isinstance(p, Thinking)
        and p.text
        and (not p.signature or signature_provider(p.signature)[0] == "openai")
    ]
    if reasoning:
        msg["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        msg["tool_calls"] = [_emit_call(c) for c in calls]
    return msg


def _emit_call(call: ToolCall) -> JSONObject:
    out: JSONObject = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    sig = signature_for("gemini", call.signature)
    if sig:
        out["extra_content"] = {"google": {"thought_signature": sig}}
    return out


def _emit_tool(tool: Tool) -> JSONObject:
    fn: JSONObject = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    fn["parameters"] = object_schema(tool.parameters)
    return {"type": "function", "function": fn}


__all__ = ["emit", "parse", "parse_tools"]


def cache_control(obj: JSON) -> JSONObject | None:
    """A Claude `cache_control` object some Chat clients put on parts, messages and tools."""
    cache = obj.get("cache_control") if isinstance(obj, dict) else None
    return dict(cache) if isinstance(cache, dict) and cache.get("type") else None
