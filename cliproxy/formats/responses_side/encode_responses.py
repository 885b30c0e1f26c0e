# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Neutral form → OpenAI Responses (stream events and whole response objects).

Output items get their `output_index` in order of appearance; text after a tool call starts
a new message item. `response.completed` carries every finished item. A turn cut short by
the token limit or a content filter ends as `response.incomplete`, as OpenAI's own API does.
Calls of tools the client declared inside a `namespace` carry that namespace again, and
calls of freeform (`custom`) tools become `custom_tool_call` items with their raw `input`
(the other providers saw them as functions taking `{"input": ...}`); see `ClientTool`.
"""

from __future__ import annotations

from typing import Unpack

from cliproxy.formats.json_types import JSONArray, JSONObject
from cliproxy.formats.responses_side._wire import responses_error, sse
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    ClientTool,
    Encoder,
    EncoderOptions,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolKey,
    ToolNames,
    Usage,
    arguments_object,
    client_tool,
    dumps,
    effective_finish,
)

_INCOMPLETE = {LENGTH: "max_output_tokens", CONTENT_FILTER: "content_filter"}


def responses_usage(usage: Usage) -> JSONObject:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_id(id: str | None, nonce: str) -> str:
    if not id:
        return f"resp_{nonce}"
    return id if id.startswith("resp_") else f"resp_{id}"


def response_object(
    id: str, created: int, model: str, status: str, output: JSONArray, usage: Usage | None
) -> JSONObject:
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "usage": responses_usage(usage) if usage is not None and usage.seen else None,
    }


def _text_part(text: str) -> JSONObject:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(item_id: str, text: str, status: str = "completed") -> JSONObject:
    content = [_text_part(text)] if status == "completed" else []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    }


def _reasoning_item(item_id: str, text: str | None, signature: str) -> JSONObject:
    item: JSONObject = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if signature:
        item["encrypted_content"] = signature
    return item


def _call_item(
    item_id: str, call_id: str, tool: ClientTool, arguments: str, status: str
) -> JSONObject:
    if tool.custom:
        item = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call_id,
            "name": tool.name,
        }
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def custom_input(arguments: str) -> str:
    """A freeform tool's raw input from the `{"input": ...}` arguments other models produced."""
    if not arguments:
        return ""
    value = arguments_object(arguments)
    raw = value.get("input", value.get("_raw"))
    return raw if isinstance(raw, str) else arguments


class _Open:
    """An output item being streamed."""

    __slots__ = ("index", "item_id", "texts", "signature", "part_open", "call_id", "tool")

    def __init__(self, index: int, item_id: str) -> None:
        self.index = index
        self.item_id = item_id
        self.texts: list[str] = []
        self.signature = ""
        self.part_open = False
        self.call_id = ""
        self.tool = ClientTool("")


class ResponsesEncoder(Encoder):
    """Responses SSE (`event: X\\ndata: Y\\n\\n`), `sequence_number` counted from 0."""

    def __init__(self, model: str, **kw: Unpack[EncoderOptions]) -> None:
        super().__init__(model, **kw)
        self.id = ""
        self._base = ""
        self.seq = 0
        self._next_index = 0
        self._items: dict[int, JSONObject] = {}
        self._message: _Open | None = None
        self._reasoning: _Open | None = None
        self._tools: dict[ToolKey, _Open] = {}
        self._serial = 0

    def _event(self, name: str, payload: JSONObject) -> None:
        payload["sequence_number"] = self.seq
        self.seq += 1
        self.out.append(sse(name, payload))

    def start(self, id: str | None, model: str | None) -> None:
        if not self.begin(model):
            return
        self.id = response_id(id, self.nonce)
        self._base = self.id[len("resp_") :]
        response = response_object(self.id, self.created, self.model, "in_progress", [], None)
        self._event("response.created", {"type": "response.created", "response": response})
        response = dict(response)
        self._event("response.in_progress", {"type": "response.in_progress", "response": response})

    def _new_item(self, prefix: str) -> _Open:
        if not self.started:
            self.start(None, None)
        index = self._next_index
        self._next_index += 1
        self._serial += 1
        return _Open(index, f"{prefix}_{self._base}_{self._serial}")

    def _added(self, state: _Open, item: JSONObject) -> None:
        self._event(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": state.index, "item": item},
        )

    def _item_done(self, state: _Open, item: JSONObject) -> None:
        self._items[state.index] = item
        self._event(
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": state.index, "item": item},
        )

    # --- message items ---

    def text(self, text: str) -> None:
        if self.done:
            return
        if self._reasoning is not None:
            self._close_reasoning()
        msg = self._message
        if msg is None:
            msg = self._message = self._new_item("msg")
            self._added(msg, _message_item(msg.item_id, "", "in_progress"))
            self._event(
                "response.content_part.added",
                {
                    "type": "response.content_part.added",
                    "item_id": msg.item_id,
                    "output_index": msg.index,
                    "content_index": 0,
                    "part": _text_part(""),
                },
            )
        msg.texts.append(text)
        self._seq_delta(
            b"response.output_text.delta",
            msg,
            b',"content_index":0,"delta":',
            text,
            b',"logprobs":[]',
        )

    def _seq_delta(self, name: bytes, state: _Open, mid: bytes, delta: str, tail: bytes) -> None:
        # deltas are the hot path: assemble bytes around the one string that changes
        self.out.append(
            b"event: "
            + name
            + b'\ndata: {"type":"'
            + name
            + b'","item_id":'
            + dumps(state.item_id)
            + b',"output_index":'
            + str(state.index).encode()
            + mid
            + dumps(delta)
            + tail
            + b',"sequence_number":'
            + str(self.seq).encode()
            + b"}\n\n"
        )
        self.seq += 1

    def _close_message(self) -> None:
        msg, self._message = self._message, None
        if msg is None:
            return
        text = "".join(msg.texts)
        self._event(
            "response.output_text.done",
            {
                "type": "response.output_text.done",
                "item_id": msg.item_id,
                "output_index": msg.index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
        )
        self._event(
            "response.content_part.done",
            {
                "type": "response.content_part.done",
                "item_id": msg.item_id,
                "output_index": msg.index,
                "content_index": 0,
                "part": _text_part(text),
            },
        )
        self._item_done(msg, _message_item(msg.item_id, text))

    # --- reasoning items ---

    def _open_reasoning(self) -> _Open:
        if self._message is not None:
            self._close_message()
        rs = self._reasoning = self._new_item("rs")
        self._added(rs, {"id": rs.item_id, "type": "reasoning", "summary": []})
        return rs

    def thinking(self, text: str) -> None:
        if self.done:
            return
        rs = self._reasoning or self._open_reasoning()
        if not rs.part_open:
            rs.part_open = True
            self._event(
                "response.reasoning_summary_part.added",
                {
                    "type": "response.reasoning_summary_part.added",
                    "item_id": rs.item_id,
                    "output_index": rs.index,
                    "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""},
                },
            )
        rs.texts.append(text)
        self._seq_delta(
            b"response.reasoning_summary_text.delta",
            rs,
            b',"summary_index":0,"delta":',
            text,
            b"",
        )

    def signature(self, signature: str) -> None:
        if self.done:
            return
        rs = self._reasoning or self._open_reasoning()
        rs.signature = signature

    def _close_reasoning(self) -> None:
        rs, self._reasoning = self._reasoning, None
        if rs is None:
            return
        text = "".join(rs.texts) if rs.part_open else None
        if rs.part_open:
            common = {"item_id": rs.item_id, "output_index": rs.index, "summary_index": 0}
            self._event(
                "response.reasoning_summary_text.done",
                {"type": "response.reasoning_summary_text.done", **common, "text": text},
            )
            self._event(
                "response.reasoning_summary_part.done",
                {
                    "type": "response.reasoning_summary_part.done",
                    **common,
                    "part": {"type": "summary_text", "text": text},
                },
            )
        self._item_done(rs, _reasoning_item(rs.item_id, text, rs.signature))

    def block_end(self) -> None:
        if self.done:
            return
        self._close_message()
        self._close_reasoning()

    # --- function calls ---

    def tool_start(self, key: ToolKey, id: str, name: str, signature: str | None = None) -> None:
        if self.done or key in self._tools:
            return
        self._close_message()
        self._close_reasoning()
        self.tools_seen = True
        call = self._new_item("fc")
        call.call_id = id or f"call_{self.nonce}{call.index}"
        call.item_id = "fc_" + call.call_id
        call.tool = client_tool(self.tool_names, name)
        self._tools[key] = call
        self._added(call, _call_item(call.item_id, call.call_id, call.tool, "", "in_progress"))

    def tool_args(self, key: ToolKey, delta: str) -> None:
        call = self._tools.get(key)
        if self.done or call is None or not delta:
            return
        call.texts.append(delta)
        if call.tool.custom:
            return  # its raw input is known once the JSON around it is complete
        self._seq_delta(b"response.function_call_arguments.delta", call, b',"delta":', delta, b"")

    def tool_end(self, key: ToolKey) -> None:
        call = self._tools.pop(key, None)
        if self.done or call is None:
            return
        args = "".join(call.texts) or "{}"
        common = {"item_id": call.item_id, "output_index": call.index}
        if call.tool.custom:
            raw = custom_input(args)
            if raw:
                self._event(
                    "response.custom_tool_call_input.delta",
                    {"type": "response.custom_tool_call_input.delta", **common, "delta": raw},
                )
            self._event(
                "response.custom_tool_call_input.done",
                {"type": "response.custom_tool_call_input.done", **common, "input": raw},
            )
        else:
            self._event(
                "response.function_call_arguments.done",
                {
                    "type": "response.function_call_arguments.done",
                    **common,
                    "name": call.tool.name,
                    "arguments": args,
                },
            )
        self._item_done(call, _call_item(call.item_id, call.call_id, call.tool, args, "completed"))

    # --- terminal ---

    def stop(self) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        self._close_message()
        self._close_reasoning()
        for key in list(self._tools):
            self.tool_end(key)
        reason = effective_finish(self.finish_reason, self.tools_seen)
        incomplete = _INCOMPLETE.get(reason)
        status = "incomplete" if incomplete else "completed"
        output = [self._items[i] for i in sorted(self._items)]
        response = response_object(self.id, self.created, self.model, status, output, self.usage)
        if incomplete:
            response["incomplete_details"] = {"reason": incomplete}
        name = f"response.{status}"
        self._event(name, {"type": name, "response": response})
        self.done = True

    def error(self, status: int, message: str) -> None:
        if self.done:
            return
        code, text = responses_error(status, message)
        self._event("error", {"type": "error", "code": code, "message": text, "param": None})
        if self.started:
            output = [self._items[i] for i in sorted(self._items)]
            response = response_object(
                self.id, self.created, self.model, "failed", output, self.usage
            )
            response["error"] = {"code": code, "message": text}
            self._event("response.failed", {"type": "response.failed", "response": response})
        self.done = True


def responses_from_message(
    msg: Message, *, model: str, created: int, nonce: str, tool_names: ToolNames | None = None
) -> JSONObject:
    """`Message` → a whole Responses `response` object."""
    rid = response_id(msg.id, nonce)
    base = rid[len("resp_") :]
    output: list[JSONObject] = []
    for n, block in enumerate(msg.blocks, 1):
        if isinstance(block, TextBlock):
            output.append(_message_item(f"msg_{base}_{n}", block.text))
        elif isinstance(block, ThinkingBlock):
            output.append(_reasoning_item(f"rs_{base}_{n}", block.text, block.signature))
        elif isinstance(block, ToolCallBlock):
            call_id = block.id or f"call_{nonce}{n}"
            tool = client_tool(tool_names, block.name)
            output.append(
                _call_item("fc_" + call_id, call_id, tool, block.arguments or "{}", "completed")
            )
    reason = effective_finish(msg.finish, msg.has_tool_calls)
    incomplete = _INCOMPLETE.get(reason)
    status = "incomplete" if incomplete else "completed"
    out = response_object(rid, created, model or msg.model, status, output, msg.usage)
    if incomplete:
        out["incomplete_details"] = {"reason": incomplete}
    return out
