# -*- test-case-name: tests.formats.test_resp_stream -*-
"""OpenAI Responses (and Codex) responses, events and whole objects, into the neutral form."""

from __future__ import annotations

from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.responses_side.decode_chat import error_status
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    TOOL_USE,
    Decoder,
    Encoder,
    Message,
    ToolCallBlock,
    ToolKey,
    Usage,
    loads_object,
    openai_usage,
    opt_str,
)
from cliproxy.formats.sse import SSEEvent

#: call items -> the field holding their arguments (a freeform tool's `input` is raw text)
_CALLS = {"function_call": "arguments", "custom_tool_call": "input"}


_IMAGE_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


def image_url(b64: str, output_format: JSON) -> str:
    """A Codex image (base64 in its `output_format`, png by default) as a `data:` URL."""
    kind = output_format.strip().lower() if isinstance(output_format, str) else ""
    return f"data:{_IMAGE_TYPES.get(kind, 'image/png')};base64,{b64}"


def usage_from_responses(raw: JSONObject) -> Usage:
    return openai_usage(raw, "input", "output")


def finish_reason(response: JSONObject, tools_seen: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return CONTENT_FILTER if reason == "content_filter" else LENGTH
    return TOOL_USE if tools_seen else STOP


def summary_text(item: JSONObject) -> str:
    """A reasoning item's visible text: its summaries, else its raw reasoning content."""
    for key in ("summary", "content"):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [
                p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
            if texts:
                return "\n\n".join(texts)
    return ""


def message_text(item: JSONObject) -> str:
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    out = []
    for p in parts:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "output_text" and isinstance(p.get("text"), str):
            out.append(p["text"])
        elif p.get("type") == "refusal" and isinstance(p.get("refusal"), str):
            out.append(p["refusal"])
    return "".join(out)


class _Reasoning:
    __slots__ = ("signature", "parts", "text_seen")

    def __init__(self, signature: str) -> None:
        self.signature = signature
        self.parts = 0
        self.text_seen = False


class ResponsesDecoder(Decoder):
    """Responses SSE: response.created … output_item/… deltas … response.completed."""

    def __init__(self, sink: Encoder, *, nonce: str) -> None:
        super().__init__(sink, nonce=nonce)
        self._begun = False
        self._reasoning: dict[ToolKey, _Reasoning] = {}
        self._text_items: set[ToolKey] = set()  # message items whose text came as deltas
        self._tools: dict[ToolKey, bool] = {}  # tool key → arguments already sent
        self._by_call_id: dict[str, ToolKey] = {}  # a call's key, for events that lack it
        self._tools_seen = False
        self._anything = False
        self._images: dict[ToolKey, str] = {}  # image item -> the last image sent for it

    def feed(self, event: SSEEvent) -> None:
        obj = loads_object(event.data) if event.data else None
        if obj is None:
            self.skipped += 1
            return
        kind = obj.get("type") or event.event
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            handler(self, obj)

    def _begin(self, response: JSON) -> None:
        if self._begun:
            return
        self._begun = True
        if not isinstance(response, dict):
            response = {}
        self.sink.start(opt_str(response.get("id")), opt_str(response.get("model")))

    def _created(self, obj: JSONObject) -> None:
        self._begin(obj.get("response"))

    def _item_added(self, obj: JSONObject) -> None:
        self._begin(None)
        item = obj.get("item")
        if not isinstance(item, dict):
            return
        kind = item.get("type")
        key = _key(obj, item)
        if kind in _CALLS:
            self._start_tool(key, item)
        elif kind == "reasoning":
            self._reasoning[key] = _Reasoning(opt_str(item.get("encrypted_content")) or "")

    def _start_tool(self, key: ToolKey, item: JSONObject) -> bool:
        name = opt_str(item.get("name"))
        if not name:
            return False  # a call without a name cannot be answered: not carried
        self._tools[key] = False
        self._tools_seen = self._anything = True
        call_id = opt_str(item.get("call_id")) or self.new_call_id()
        self._by_call_id[call_id] = key
        self.sink.tool_start(key, call_id, name)
        return True

    def _summary_part_added(self, obj: JSONObject) -> None:
        state = self._reasoning.get(_key(obj, None))
        if state is None:
            return
        if state.parts and state.text_seen:
            self.sink.thinking("\n\n")
        state.parts += 1

    def _reasoning_delta(self, obj: JSONObject) -> None:
        delta = obj.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        self._begin(None)
        state = self._reasoning.get(_key(obj, None))
        if state is not None:
            state.text_seen = True
        self._anything = True
        self.sink.thinking(delta)

    def _text_delta(self, obj: JSONObject) -> None:
        delta = obj.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        self._begin(None)
        self._text_items.add(_key(obj, None))
        self._anything = True
        self.sink.text(delta)

    def _open_call(self, obj: JSONObject) -> ToolKey:
        """The call an argument event is for; one without id or index means the open one."""
        key = _key(obj, None)
        if key not in self._tools and len(self._tools) == 1:
            return next(iter(self._tools))
        return key

    def _args_delta(self, obj: JSONObject) -> None:
        key = self._open_call(obj)
        delta = obj.get("delta")
        if key in self._tools and isinstance(delta, str) and delta:
            self._tools[key] = True
            self.sink.tool_args(key, delta)

    def _args_done(self, obj: JSONObject) -> None:
        key = self._open_call(obj)
        args = obj.get("arguments", obj.get("input"))
        if self._tools.get(key) is False and isinstance(args, str) and args:
            self._tools[key] = True
            self.sink.tool_args(key, args)

    def _item_done(self, obj: JSONObject) -> None:
        item = obj.get("item")
        if not isinstance(item, dict):
            return
        self._begin(None)
        key = _key(obj, item)
        kind = item.get("type")
        sink = self.sink
        if kind == "reasoning":
            state = self._reasoning.pop(key, None) or _Reasoning("")
            emitted = state.text_seen
            if not emitted:
                text = summary_text(item)
                if text:
                    sink.thinking(text)
                    emitted = True
            signature = opt_str(item.get("encrypted_content")) or state.signature
            if signature:
                sink.signature(signature)
                emitted = True
            if emitted:
                self._anything = True
                sink.block_end()
        elif kind == "message":
            if key not in self._text_items:
                text = message_text(item)
                if text:
                    self._anything = True
                    sink.text(text)
            self._text_items.discard(key)
            sink.block_end()
        elif kind == "image_generation_call":
            self._image(key, item.get("result"), item.get("output_format"))
        elif kind in _CALLS:
            if key not in self._tools:  # `added` named it by index or call id, `done` by id
                key = self._by_call_id.pop(opt_str(item.get("call_id")) or "", key)
            if key not in self._tools and not self._start_tool(key, item):
                return
            if self._tools.pop(key) is False:
                args = item.get(_CALLS[kind])
                if isinstance(args, str) and args:
                    sink.tool_args(key, args)
            sink.tool_end(key)

    def _image(self, key: ToolKey, b64: JSON, output_format: JSON) -> None:
        """One image (a partial one, or the result); the same image twice is sent once."""
        if not isinstance(b64, str) or not b64 or self._images.get(key) == b64:
            return
        self._begin(None)
        self._images[key] = b64
        self._anything = True
        self.sink.image(image_url(b64, output_format))

    def _partial_image(self, obj: JSONObject) -> None:
        self._image(_key(obj, None), obj.get("partial_image_b64"), obj.get("output_format"))

    def _completed(self, obj: JSONObject) -> None:
        response = obj.get("response")
        if not isinstance(response, dict):
            response = {}
        self._begin(response)
        if not self._anything:
            # an upstream that streamed no items: the finished response still has them
            self._replay(response.get("output"))
        for key in list(self._tools):
            self.sink.tool_end(key)
        self._tools.clear()
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.usage.replace_with(usage_from_responses(usage))
            self.sink.set_usage(self.usage)
        self.finished = True
        self.sink.finish(finish_reason(response, self._tools_seen))
        self.sink.stop()

    def _replay(self, output: JSON) -> None:
        for n, item in enumerate(output if isinstance(output, list) else []):
            if isinstance(item, dict):
                self._item_done({"item": item, "output_index": n})

    def _failed(self, obj: JSONObject) -> None:
        response = obj.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        status, message = error_status(error)
        self.sink.error(status, message)

    def _error(self, obj: JSONObject) -> None:
        error = obj.get("error") if isinstance(obj.get("error"), dict) else obj
        status, message = error_status(error)
        self.sink.error(status, message)


_HANDLERS = {
    "response.created": ResponsesDecoder._created,
    "response.in_progress": ResponsesDecoder._created,
    "response.output_item.added": ResponsesDecoder._item_added,
    "response.reasoning_summary_part.added": ResponsesDecoder._summary_part_added,
    "response.reasoning_summary_text.delta": ResponsesDecoder._reasoning_delta,
    "response.reasoning_text.delta": ResponsesDecoder._reasoning_delta,
    "response.output_text.delta": ResponsesDecoder._text_delta,
    "response.refusal.delta": ResponsesDecoder._text_delta,
    "response.function_call_arguments.delta": ResponsesDecoder._args_delta,
    "response.function_call_arguments.done": ResponsesDecoder._args_done,
    "response.custom_tool_call_input.delta": ResponsesDecoder._args_delta,
    "response.custom_tool_call_input.done": ResponsesDecoder._args_done,
    "response.output_item.done": ResponsesDecoder._item_done,
    "response.image_generation_call.partial_image": ResponsesDecoder._partial_image,
    "response.completed": ResponsesDecoder._completed,
    "response.incomplete": ResponsesDecoder._completed,
    "response.failed": ResponsesDecoder._failed,
    "error": ResponsesDecoder._error,
}


def _key(obj: JSONObject, item: JSONObject | None) -> ToolKey:
    """Items are keyed by id; events that lack one fall back to their output index."""
    item_id = item.get("id") if item is not None else None
    if isinstance(item_id, str) and item_id:
        return item_id
    item_id = obj.get("item_id")
    if isinstance(item_id, str) and item_id:
        return item_id
    index: ToolKey = obj.get("output_index")
    if index is None and item is not None:
        index = opt_str(item.get("call_id"))  # neither id nor index: the call id tells apart
    return index


def message_from_responses(body: JSONObject, *, nonce: str | None = None) -> Message:
    """A whole `response` object (or its `response.completed` event) → `Message`."""
    if body.get("type") in ("response.completed", "response.incomplete") and isinstance(
        body.get("response"), dict
    ):
        body = body["response"]
    msg = Message(id=opt_str(body.get("id")) or "", model=opt_str(body.get("model")) or "")
    output = body.get("output")
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            msg.add_thinking(summary_text(item), opt_str(item.get("encrypted_content")) or "")
        elif kind == "message":
            msg.add_text(message_text(item))
        elif kind == "image_generation_call":
            result = item.get("result")
            if isinstance(result, str) and result:
                msg.images.append(image_url(result, item.get("output_format")))
        elif kind in _CALLS:
            args = item.get(_CALLS[kind])
            msg.blocks.append(
                ToolCallBlock(
                    id=opt_str(item.get("call_id")) or opt_str(item.get("id")) or "",
                    name=opt_str(item.get("name")) or "",
                    arguments=args if isinstance(args, str) else "",
                )
            )
    msg.finish = finish_reason(body, msg.has_tool_calls)
    if isinstance(body.get("usage"), dict):
        msg.usage = usage_from_responses(body["usage"])
    return msg
