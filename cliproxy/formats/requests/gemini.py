# -*- test-case-name: tests.formats.test_requests_gemini -*-
"""Gemini generateContent request bodies <-> the intermediate representation.

Gemini tool calls have no ids that every endpoint accepts (several reject `id` in requests),
so none are sent. Reading a Gemini body, calls without an id get deterministic ids and each
functionResponse is paired with the oldest unanswered call of the same name. Writing one, the
responses of a turn are put in the order of their calls, so that pairing holds on the way back.
"""

from __future__ import annotations

from collections import deque

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONArray, JSONObject
from cliproxy.formats.requests import thinking
from cliproxy.formats.requests._wire import (
    GEMINI_BYPASS_SIGNATURE,
    args_object,
    args_text,
    as_int,
    as_list,
    as_number,
    as_str,
    get,
    json_text,
    kind_of_mime,
    loads_or_none,
    media_fallback_text,
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
    result_text,
)
from cliproxy.formats.requests.names import gemini_function_name, name_from_tool_id
from cliproxy.formats.requests.schema import clean_schema_for_gemini, lowercase_types

_SAFETY_OFF = [
    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_NONE"},
]
# A functionResponse.response holding just one of these keys is a wrapped plain value.
_WRAPPERS = ("result", "output", "content")

# ---- parsing ------------------------------------------------------------------------------


def unwrap(body: JSONObject) -> JSONObject:
    """The request proper inside a Gemini CLI `{"request": ...}` or countTokens envelope."""
    for key in ("request", "generateContentRequest", "generate_content_request"):
        inner = body.get(key)
        if "contents" not in body and isinstance(inner, dict):
            return inner
    return body


def parse(body: JSONObject) -> Conversation:
    """A generateContent request as a Conversation. Unknown part kinds are dropped."""
    body = unwrap(body)
    contents = body.get("contents")
    if not isinstance(contents, list):
        raise TranslationError("contents must be an array")
    conv = Conversation(system=_parse_system(get(body, "systemInstruction", "system_instruction")))
    ids = _CallIds()
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise TranslationError(f"contents[{i}] must be an object")
        model = content.get("role") == "model"
        parts: list[Part] = []
        for raw in as_list(content.get("parts"), f"contents[{i}].parts"):
            part = _parse_content_part(raw, model, ids) if isinstance(raw, dict) else None
            if part is not None:
                parts.append(part)
        conv.messages.append(Message("assistant" if model else "user", parts))

    conv.tools = parse_tools(as_list(body.get("tools"), "tools"))
    conv.tool_choice = _parse_tool_config(get(body, "toolConfig", "tool_config"))
    read_generation_config(conv, get(body, "generationConfig", "generation_config"))
    conv.reasoning = thinking.read(Format.GEMINI, body)
    return conv


class _CallIds:
    """Ids for the calls and responses of one conversation; Gemini may send either without one.

    A response without an id answers the oldest unanswered call of its function.
    """

    def __init__(self) -> None:
        self._pending: dict[str, deque[str]] = {}
        self._ordinal = 0

    def call(self, name: str, args: str, given: str | None) -> str:
        call_id = given or synth_call_id(self._ordinal, name, args)
        self._ordinal += 1
        self._pending.setdefault(name, deque()).append(call_id)
        return call_id

    def response(self, name: str, given: str | None) -> str:
        queue = self._pending.get(name)
        if given:
            if queue and given in queue:
                queue.remove(given)
            return given
        return queue.popleft() if queue else synth_call_id(self._ordinal, name)


def _parse_content_part(raw: JSONObject, model: bool, ids: _CallIds) -> Part | None:
    """One part of a `contents[]` entry; `model` says whether the model's turn holds it."""
    call = get(raw, "functionCall", "function_call")
    response = get(raw, "functionResponse", "function_response")
    if isinstance(call, dict) and model:
        name = as_str(call.get("name")) or ""
        args = args_text(call.get("args"))
        call_id = ids.call(name, args, _given_id(call))
        sig = as_str(get(raw, "thoughtSignature", "thought_signature"))
        return ToolCall(call_id, name, args, sig)
    if isinstance(response, dict) and not model:
        name = as_str(response.get("name")) or ""
        call_id = ids.response(name, _given_id(response))
        content_parts, is_error = _response_content(response.get("response"))
        return ToolResult(call_id, name, content_parts, is_error)
    part = _parse_part(raw)
    if part is not None and (model or not isinstance(part, Thinking)):
        return part
    return None


def _given_id(part: JSONObject) -> str | None:
    """The id a client gave a functionCall or functionResponse: Gemini's `id`, or the
    `call_id`/`callId` some gateways put there to carry an OpenAI call id through."""
    return as_str(get(part, "id", "callId", "call_id")) or None


def read_generation_config(conv: Conversation, gen: JSON) -> None:
    """Sampling settings from `generationConfig` into `conv`."""
    if not isinstance(gen, dict):
        return
    conv.temperature = as_number(gen.get("temperature"))
    conv.top_p = as_number(get(gen, "topP", "top_p"))
    conv.top_k = as_int(get(gen, "topK", "top_k"))
    conv.max_tokens = as_int(get(gen, "maxOutputTokens", "max_output_tokens"))
    conv.stop = stop_list(get(gen, "stopSequences", "stop_sequences"))
    conv.n = as_int(get(gen, "candidateCount", "candidate_count"))
    conv.seed = as_int(gen.get("seed"))
    conv.presence_penalty = as_number(get(gen, "presencePenalty", "presence_penalty"))
    conv.frequency_penalty = as_number(get(gen, "frequencyPenalty", "frequency_penalty"))
    conv.response_format = _parse_response_format(gen)


def _parse_system(system: JSON) -> list[Text]:
    if isinstance(system, str):
        return [Text(system)] if system else []
    parts = get(system, "parts")
    if not isinstance(parts, list):
        return []
    return [
        Text(p["text"])
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
    ]


def _parse_part(raw: JSONObject) -> Part | None:
    text = raw.get("text")
    if isinstance(text, str):
        if raw.get("thought") is True:
            return Thinking(text, as_str(get(raw, "thoughtSignature", "thought_signature")))
        return Text(text) if text else None
    inline = get(raw, "inlineData", "inline_data")
    if isinstance(inline, dict) and as_str(inline.get("data")):
        mime = as_str(get(inline, "mimeType", "mime_type"))
        return Media(kind_of_mime(mime), mime, data=inline["data"])
    file = get(raw, "fileData", "file_data")
    if isinstance(file, dict) and as_str(get(file, "fileUri", "file_uri")):
        mime = as_str(get(file, "mimeType", "mime_type"))
        return Media(kind_of_mime(mime), mime, url=get(file, "fileUri", "file_uri"))
    # executableCode, codeExecutionResult, signature-only parts: nothing to carry
    return None


def _response_content(response: JSON) -> tuple[list[Text | Media], bool]:
    """A functionResponse.response as result text (and whether it reports an error)."""
    if isinstance(response, dict) and len(response) == 1:
        ((key, value),) = response.items()
        if key in _WRAPPERS or key == "error":
            text = value if isinstance(value, str) else json_text(value)
            return ([Text(text)] if text else []), key == "error"
    if response is None:
        return [], False
    return [Text(json_text(response))], False


def parse_tools(tools: JSONArray) -> list[Tool]:
    out: list[Tool] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        for decl in get(tool, "functionDeclarations", "function_declarations") or []:
            if not isinstance(decl, dict) or not as_str(decl.get("name")):
                continue
            schema = get(decl, "parametersJsonSchema", "parameters_json_schema")
            if not isinstance(schema, dict):
                schema = decl.get("parameters")
            # Gemini's OpenAPI dialect (upper-case types, `propertyOrdering`) is accepted in
            # both fields by Gemini; Claude, OpenAI and Codex want plain JSON Schema.
            schema = lowercase_types(schema) if isinstance(schema, dict) else None
            out.append(Tool(decl["name"], as_str(decl.get("description")) or "", schema))
        if any(k in tool for k in ("googleSearch", "google_search", "googleSearchRetrieval")):
            out.append(Tool("web_search", kind="web_search"))
    return out


def _parse_tool_config(config: JSON) -> ToolChoice | None:
    fcc = get(config, "functionCallingConfig", "function_calling_config")
    mode = str(get(fcc, "mode") or "").upper()
    allowed = get(fcc, "allowedFunctionNames", "allowed_function_names")
    if mode == "NONE":
        return ToolChoice("none")
    if mode == "ANY":
        if isinstance(allowed, list) and len(allowed) == 1 and isinstance(allowed[0], str):
            return ToolChoice("tool", allowed[0])
        return ToolChoice("required")
    if mode in ("AUTO", "VALIDATED"):
        return ToolChoice("auto")
    return None


def _parse_response_format(gen: JSONObject) -> ResponseFormat | None:
    schema = get(gen, "responseJsonSchema", "response_json_schema")
    if not isinstance(schema, dict):
        schema = get(gen, "responseSchema", "response_schema")
    if isinstance(schema, dict):
        return ResponseFormat("json_schema", None, lowercase_types(schema))
    if get(gen, "responseMimeType", "response_mime_type") == "application/json":
        return ResponseFormat("json_object")
    return None


# ---- emitting -----------------------------------------------------------------------------


def emit(
    conv: Conversation, *, model: str, stream: bool, caps: thinking.ModelCaps | None
) -> JSONObject:
    """A generateContent request for `conv`. The model and stream choice go in the URL."""
    del model, stream
    system, messages = hoist_system(conv)
    names = call_names(messages)
    contents: list[JSONObject] = []
    last_calls: list[str] = []
    separate = False  # the last content is a standalone turn
    for msg in coalesce(messages):
        if msg.role == "user":
            parts = _user_parts(msg.parts, last_calls, names)
            role = "user"
        else:
            last_calls = [p.id for p in msg.parts if isinstance(p, ToolCall)]
            parts = _model_parts(msg.parts)
            role = "model"
        if not parts:
            continue
        if contents and contents[-1]["role"] == role and not (msg.standalone or separate):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
        separate = msg.standalone
    if len(contents) > 1 and contents[-1]["role"] == "model":
        # A trailing model turn (an assistant prefill, or a call nobody answered) is left
        # out: Gemini wants a conversation to end with a user turn or function response,
        # and has no prefill. (A conversation of one model turn is left as it is: without
        # it there would be nothing to send.)
        contents.pop()

    body: JSONObject = {"contents": contents}
    texts = [{"text": t.text} for t in system if t.text]
    if texts:
        body["systemInstruction"] = {"parts": texts}
    tools = _emit_tools(conv.tools)
    if tools:
        body["tools"] = tools
        config = _emit_tool_config(conv)
        if config is not None:
            body["toolConfig"] = config
    gen = _emit_generation_config(conv)
    if gen:
        body["generationConfig"] = gen
    body["safetySettings"] = [dict(s) for s in _SAFETY_OFF]
    thinking.emit(Format.GEMINI, body, conv.reasoning, caps)
    return body


def _user_parts(
    parts: list[Part], last_calls: list[str], names: dict[str, str]
) -> list[JSONObject]:
    # (orphan results were already turned into text: ir.orphan_results_as_text)
    answered = [p for p in parts if isinstance(p, ToolResult)]
    answered.sort(key=lambda r: last_calls.index(r.id) if r.id in last_calls else len(last_calls))
    out: list[JSONObject] = []
    extra: list[JSONObject] = []
    for result in answered:
        name = names.get(result.id) or result.name or name_from_tool_id(result.id) or result.id
        response = _response_object(result)
        out.append({"functionResponse": {"name": gemini_function_name(name), "response": response}})
        # Gemini's functionResponse carries JSON only: images of a result follow it.
        extra.extend(_media_part(m) for m in result.content if isinstance(m, Media))
    out.extend(extra)
    for part in parts:
        if isinstance(part, Text) and part.text:
            out.append({"text": part.text})
        elif isinstance(part, Media):
            out.append(_media_part(part))
    return out


def _response_object(result: ToolResult) -> JSONObject:
    text = result_text(result)
    key = "error" if result.is_error else "result"
    value = loads_or_none(text)
    # JSON object text is passed as the object itself, but only when that is lossless (the
    # exact compact text) and cannot be mistaken for a wrapped plain value on the way back.
    if (
        isinstance(value, dict)
        and json_text(value) == text
        and not (len(value) == 1 and (set(value) & {*_WRAPPERS, "error"}))
    ):
        return {key: value} if result.is_error else value
    return {key: text}


def _media_part(media: Media) -> JSONObject:
    if media.data is not None:
        return {
            "inlineData": {"mimeType": media.mime or "application/octet-stream", "data": media.data}
        }
    if media.url:
        file: JSONObject = {"fileUri": media.url}
        if media.mime:
            file["mimeType"] = media.mime
        return {"fileData": file}
    return {"text": media_fallback_text(media).text}


def _model_parts(parts: list[Part]) -> list[JSONObject]:
    out: list[JSONObject] = []
    for part in parts:
        if isinstance(part, Text):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ToolCall):
            # Gemini 3 refuses replayed calls without a thought signature: the sentinel is
            # Google's documented escape for history it did not produce.
            sig = signature_for("gemini", part.signature) or GEMINI_BYPASS_SIGNATURE
            call = {"name": gemini_function_name(part.name), "args": args_object(part.arguments)}
            out.append({"functionCall": call, "thoughtSignature": sig})
        elif isinstance(part, Media):
            out.append(_media_part(part))
        # past thoughts are not replayed: Gemini does not need them
    return out


def _emit_tools(tools: list[Tool]) -> list[JSONObject]:
    decls: list[JSONObject] = []
    out: list[JSONObject] = []
    for tool in tools:
        if tool.kind == "web_search":
            if not any("googleSearch" in t for t in out):
                out.append({"googleSearch": {}})
            continue
        decl: JSONObject = {"name": gemini_function_name(tool.name)}
        if tool.description:
            decl["description"] = tool.description
        if tool.parameters is not None:
            decl["parametersJsonSchema"] = clean_schema_for_gemini(tool.parameters)
        decls.append(decl)
    if decls:
        out.insert(0, {"functionDeclarations": decls})
    return out


def _emit_tool_config(conv: Conversation) -> JSONObject | None:
    choice = conv.tool_choice
    if choice is None:
        return None
    if choice.mode == "tool" and choice.name:
        fcc: JSONObject = {
            "mode": "ANY",
            "allowedFunctionNames": [gemini_function_name(choice.name)],
        }
    else:
        fcc = {"mode": {"none": "NONE", "required": "ANY"}.get(choice.mode, "AUTO")}
    return {"functionCallingConfig": fcc}


def _emit_generation_config(conv: Conversation) -> JSONObject:
    gen: JSONObject = {}
    for key, value in (
        ("temperature", conv.temperature),
        ("topP", conv.top_p),
        ("topK", conv.top_k),
        # CLIProxyAPI drops these two for Chat and Claude clients (a quirk); a client that
        # asks for a length limit or stop sequences expects them honoured.
        ("maxOutputTokens", conv.max_tokens),
        ("stopSequences", list(conv.stop) if conv.stop else None),
        ("candidateCount", conv.n if conv.n and conv.n > 1 else None),
        ("seed", conv.seed),
        ("presencePenalty", conv.presence_penalty),
        ("frequencyPenalty", conv.frequency_penalty),
    ):
        if value is not None:
            gen[key] = value
    rf = conv.response_format
    if rf is not None and rf.type in ("json_object", "json_schema"):
        gen["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            gen["responseJsonSchema"] = clean_schema_for_gemini(rf.schema, response=True)
    return gen


__all__ = ["emit", "parse", "parse_tools", "read_generation_config", "unwrap"]
