# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Claude Messages responses (stream events and whole messages) into the neutral form."""

from __future__ import annotations

from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    PAUSE,
    STOP,
    STOP_SEQUENCE,
    TOOL_USE,
    Decoder,
    Encoder,
    Message,
    ToolCallBlock,
    ToolKey,
    Usage,
    as_int,
    dumps_str,
    loads_object,
    opt_str,
)
from cliproxy.formats.sse import SSEEvent

_FINISH = {
    "end_turn": STOP,
    "stop_sequence": STOP_SEQUENCE,
    "max_tokens": LENGTH,
    "model_context_window_exceeded": LENGTH,
    "tool_use": TOOL_USE,
    "pause_turn": PAUSE,
    "refusal": CONTENT_FILTER,
    "sensitive": CONTENT_FILTER,
}

_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: JSON) -> str | None:
    if not isinstance(stop_reason, str) or not stop_reason:
        return None
    return _FINISH.get(stop_reason, STOP)


def usage_from_claude(raw: JSONObject) -> Usage:
    cached = as_int(raw.get("cache_read_input_tokens"))
    creation = as_int(raw.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=as_int(raw.get("input_tokens")) + cached + creation,
        output_tokens=as_int(raw.get("output_tokens")),
        cached_tokens=cached,
        cache_creation_tokens=creation,
        cache_creation_reported="cache_creation_input_tokens" in raw,
        seen=True,
    )


def error_status(error: JSON) -> tuple[int, str]:
    """(HTTP status, message) for a Claude error object."""
    if not isinstance(error, dict):
        return 500, "upstream error"
    message = error.get("message")
    kind = error.get("type")
    status = _ERROR_STATUS.get(kind, 500) if isinstance(kind, str) else 500
    return status, message if isinstance(message, str) and message else "upstream error"


class ClaudeDecoder(Decoder):
    """Claude SSE: message_start, content_block_start/delta/stop, message_delta, message_stop."""

    def __init__(self, sink: Encoder, *, nonce: str) -> None:
        super().__init__(sink, nonce=nonce)
        self._kinds: dict[ToolKey, str] = {}
        self._raw_usage: JSONObject = {}

    def feed(self, event: SSEEvent) -> None:
        obj = loads_object(event.data) if event.data else None
        if obj is None:
            self.skipped += 1
            return
        kind = obj.get("type") or event.event
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            handler(self, obj)

    def _merge_usage(self, raw: JSON) -> None:
        if not isinstance(raw, dict):
            return
        for key, value in raw.items():
            if value is not None:
                self._raw_usage[key] = value
        self.usage.replace_with(usage_from_claude(self._raw_usage))
        self.sink.set_usage(self.usage)

    def _message_start(self, obj: JSONObject) -> None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            msg = {}
        self._merge_usage(msg.get("usage"))
        self.sink.start(opt_str(msg.get("id")), opt_str(msg.get("model")))

    def _block_start(self, obj: JSONObject) -> None:
        index = obj.get("index")
        block = obj.get("content_block")
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if not isinstance(kind, str):
            return
        sink = self.sink
        if kind == "tool_use" and not block.get("name"):
            return  # a call without a name cannot be answered: not carried
        self._kinds[index] = kind
        if kind == "text":
            if isinstance(block.get("text"), str) and block["text"]:
                sink.text(block["text"])
        elif kind == "thinking":
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                sink.thinking(block["thinking"])
            if isinstance(block.get("signature"), str) and block["signature"]:
                sink.signature(block["signature"])
        elif kind == "tool_use":
            sink.tool_start(index, opt_str(block.get("id")) or self.new_call_id(), block["name"])
            initial = block.get("input")
            if isinstance(initial, dict) and initial:
                sink.tool_args(index, dumps_str(initial))
        # server_tool_use, web_search_tool_result, redacted_thinking …: not carried

    def _block_delta(self, obj: JSONObject) -> None:
        index = obj.get("index")
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        sink = self.sink
        if kind == "text_delta":
            if isinstance(delta.get("text"), str) and delta["text"]:
                sink.text(delta["text"])
        elif kind == "thinking_delta":
            if isinstance(delta.get("thinking"), str) and delta["thinking"]:
                sink.thinking(delta["thinking"])
        elif kind == "signature_delta":
            if isinstance(delta.get("signature"), str) and delta["signature"]:
                sink.signature(delta["signature"])
        elif kind == "input_json_delta":
            part = delta.get("partial_json")
            if self._kinds.get(index) == "tool_use" and isinstance(part, str) and part:
                sink.tool_args(index, part)

    def _block_stop(self, obj: JSONObject) -> None:
        index = obj.get("index")
        kind = self._kinds.pop(index, None)
        if kind == "tool_use":
            self.sink.tool_end(index)
        elif kind in ("text", "thinking"):
            self.sink.block_end()

    def _message_delta(self, obj: JSONObject) -> None:
        self._merge_usage(obj.get("usage"))
        delta = obj.get("delta")
        if isinstance(delta, dict):
            reason = finish_reason(delta.get("stop_reason"))
            if reason is not None:
                self.finished = True
                self.sink.finish(reason, opt_str(delta.get("stop_sequence")))

    def _message_stop(self, obj: JSONObject) -> None:
        self.sink.stop()

    def _error(self, obj: JSONObject) -> None:
        status, message = error_status(obj.get("error"))
        self.sink.error(status, message)


_HANDLERS = {
    "message_start": ClaudeDecoder._message_start,
    "content_block_start": ClaudeDecoder._block_start,
    "content_block_delta": ClaudeDecoder._block_delta,
    "content_block_stop": ClaudeDecoder._block_stop,
    "message_delta": ClaudeDecoder._message_delta,
    "message_stop": ClaudeDecoder._message_stop,
    "error": ClaudeDecoder._error,
}


def message_from_claude(body: JSONObject, *, nonce: str | None = None) -> Message:
    """A whole Claude `message` object → `Message`."""
    msg = Message(id=opt_str(body.get("id")) or "", model=opt_str(body.get("model")) or "")
    content = body.get("content")
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            msg.add_text(block["text"])
        elif kind == "thinking":
            msg.add_thinking(
                opt_str(block.get("thinking")) or "", opt_str(block.get("signature")) or ""
            )
        elif kind == "tool_use":
            tool_input = block.get("input")
            msg.blocks.append(
                ToolCallBlock(
                    id=opt_str(block.get("id")) or "",
                    name=opt_str(block.get("name")) or "",
                    arguments=dumps_str(tool_input if tool_input is not None else {}),
                )
            )
    msg.finish = finish_reason(body.get("stop_reason"))
    msg.stop_sequence = opt_str(body.get("stop_sequence"))
    if isinstance(body.get("usage"), dict):
        msg.usage = usage_from_claude(body["usage"])
    return msg
