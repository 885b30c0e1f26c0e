# -*- test-case-name: tests.formats.test_resp_stream -*-
"""OpenAI Chat Completions responses (chunks and whole completions) into the neutral form.

Only choice 0 is carried: the other client formats have one answer per response.
"""

from __future__ import annotations

from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    TOOL_USE,
    Decoder,
    Encoder,
    Message,
    ToolCallBlock,
    Usage,
    dumps_str,
    loads_object,
    new_nonce,
    openai_usage,
    opt_str,
)
from cliproxy.formats.sse import SSEEvent

_FINISH = {
    "stop": STOP,
    "length": LENGTH,
    "max_tokens": LENGTH,
    "tool_calls": TOOL_USE,
    "function_call": TOOL_USE,
    "content_filter": CONTENT_FILTER,
}

_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "insufficient_quota": 429,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "server_error": 500,
}


def finish_reason(value: JSON) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _FINISH.get(value, STOP)


def usage_from_chat(raw: JSONObject) -> Usage:
    return openai_usage(raw, "prompt", "completion")


def error_status(error: JSON) -> tuple[int, str]:
    """(HTTP status, message) for an OpenAI-style error object (also used for Responses)."""
    if isinstance(error, str):
        return 500, error
    if not isinstance(error, dict):
        return 500, "upstream error"
    message = error.get("message")
    message = message if isinstance(message, str) and message else "upstream error"
    code = error.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return code, message
    for key in (code, error.get("type")):
        if isinstance(key, str) and key in _ERROR_STATUS:
            return _ERROR_STATUS[key], message
    return 500, message


def reasoning_text(value: JSON) -> str:
    """`reasoning_content` / `reasoning` as providers send it: a string, or parts with text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    text = value.get("text") if isinstance(value, dict) else None
    return text if isinstance(text, str) else ""


def _content_text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p["text"]
            for p in value
            if isinstance(p, dict)
            and p.get("type") in (None, "text")
            and isinstance(p.get("text"), str)
        )
    return ""


def tool_signature(call: JSONObject) -> str | None:
    """Gemini's OpenAI-compatible API carries a thought signature on each tool call."""
    extra = call.get("extra_content")
    if isinstance(extra, dict):
        google = extra.get("google")
        signature = google.get("thought_signature") if isinstance(google, dict) else None
        if isinstance(signature, str):
            return signature
    return None


class _Tool:
    __slots__ = ("id", "name", "pending", "started", "signature")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.pending: list[str] = []
        self.started = False
        self.signature: str | None = None


class ChatDecoder(Decoder):
    """OpenAI chat chunks, ending with `data: [DONE]` (which may come twice)."""

    def __init__(self, sink: Encoder, *, nonce: str) -> None:
        super().__init__(sink, nonce=nonce)
        self._tools: dict[int, _Tool] = {}
        self._begun = False
        self._saw_tool = False

    def feed(self, event: SSEEvent) -> None:
        data = event.data
        if data[:6] == b"[DONE]" and data.strip() == b"[DONE]":
            self._end_tools()
            if not self.finished:
                self.finished = True
                self.sink.finish(STOP)
            self.sink.stop()
            return
        obj = loads_object(data) if data else None
        if obj is None:
            self.skipped += 1
            return
        sink = self.sink
        if "error" in obj and not obj.get("choices"):
            status, message = error_status(obj["error"])
            sink.error(status, message)
            return
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage.replace_with(usage_from_chat(usage))
            sink.set_usage(self.usage)
        if not self._begun:
            self._begun = True
            sink.start(opt_str(obj.get("id")), opt_str(obj.get("model")))
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict) or choice.get("index", position) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta)
            reason = finish_reason(choice.get("finish_reason"))
            if reason is not None and not self.finished:
                self._end_tools()
                self.finished = True
                if reason == TOOL_USE and not self._saw_tool:
                    reason = STOP  # no call was announced: a tool-use stop would dangle
                sink.finish(reason)

    def _delta(self, delta: JSONObject) -> None:
        sink = self.sink
        thought = delta.get("reasoning_content")
        if thought is None:
            thought = delta.get("reasoning")
        if thought is not None:
            text = reasoning_text(thought)
            if text:
                sink.thinking(text)
        content = delta.get("content")
        if content:
            text = _content_text(content)
            if text:
                sink.text(text)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_delta(position, call)

    def _tool_delta(self, position: int, call: JSONObject) -> None:
        index = call.get("index")
        if not isinstance(index, int):
            index = position
        tool = self._tools.get(index)
        if tool is None:
            tool = self._tools[index] = _Tool()
        if not tool.started:
            if isinstance(call.get("id"), str) and call["id"]:
                tool.id = call["id"]
            signature = tool_signature(call)
            if signature:
                tool.signature = signature
        fn = call.get("function")
        if not isinstance(fn, dict):
            fn = {}
        name = fn.get("name")
        if not tool.started and isinstance(name, str) and name:
            tool.name = name
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            if tool.started:
                self.sink.tool_args(index, args)
            else:
                tool.pending.append(args)
        # a call starts once its name and id are both known (some upstreams send the id in
        # a later delta); one that never gets both starts at the end (`_end_tools`)
        if not tool.started and tool.name and tool.id and not self.finished:
            self._start(index, tool)

    def _start(self, index: int, tool: _Tool) -> None:
        tool.started = True
        self._saw_tool = True
        if not tool.id:
            tool.id = self.new_call_id()
        self.sink.tool_start(index, tool.id, tool.name or "", tool.signature)
        if tool.pending:
            self.sink.tool_args(index, "".join(tool.pending))
            tool.pending = []

    def _end_tools(self) -> None:
        """Start the calls still waiting, in index order, and end them all.

        A call with neither name, id nor arguments is dropped; one without a name is
        `tool_<index>` (an upstream that never names its calls still gets them answered).
        """
        if not self._tools:
            return
        for index in sorted(self._tools):
            tool = self._tools[index]
            if not tool.started and (tool.name or tool.id or tool.pending):
                tool.name = tool.name or f"tool_{index}"
                self._start(index, tool)
            if tool.started:
                self.sink.tool_end(index)
        self._tools = {}


def message_from_chat(body: JSONObject, *, nonce: str | None = None) -> Message:
    """A whole `chat.completion` object → `Message` (choice 0)."""
    msg = Message(id=opt_str(body.get("id")) or "", model=opt_str(body.get("model")) or "")
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    if not isinstance(choice, dict):
        choice = {}
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    thought = message.get("reasoning_content")
    if thought is None:
        thought = message.get("reasoning")
    msg.add_thinking(reasoning_text(thought))
    msg.add_text(_content_text(message.get("content")))
    calls = message.get("tool_calls")
    nonce = nonce or new_nonce()
    for n, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            continue
        fn = call.get("function")
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = "" if args is None else dumps_str(args)
        msg.blocks.append(
            ToolCallBlock(
                id=opt_str(call.get("id")) or f"call_{nonce}{n}",
                name=opt_str(fn.get("name")) or "",
                arguments=args,
                signature=tool_signature(call) or "",
            )
        )
    msg.finish = finish_reason(choice.get("finish_reason"))
    if isinstance(body.get("usage"), dict):
        msg.usage = usage_from_chat(body["usage"])
    return msg
