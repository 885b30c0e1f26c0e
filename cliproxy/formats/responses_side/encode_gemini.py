# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Neutral form → Gemini GenerateContentResponse (stream chunks and whole responses).

Framing: `data: <json>\\n\\n` for `alt=sse`; with `sse=False` the chunks form one JSON array
(`[`, `,\\r\\n` between chunks, `]` at the end), which is what Gemini sends without `alt=sse`.
Function calls are buffered and sent whole, because Gemini clients expect whole calls.
"""

from __future__ import annotations

from typing import Unpack

from cliproxy.formats import Family
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side._wire import family_error
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
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


def gemini_finish(reason: str) -> str:
    if reason == LENGTH:
        return "MAX_TOKENS"
    if reason == CONTENT_FILTER:
        return "SAFETY"
    return "STOP"


def gemini_usage(usage: Usage) -> JSONObject:
    out: JSONObject = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def _call_part(id: str, name: str, arguments: str) -> JSONObject:
    call: JSONObject = {"name": name, "args": arguments_object(arguments)}
    if id:
        call["id"] = id
    return {"functionCall": call}


class GeminiEncoder(Encoder):
    def __init__(self, model: str, *, sse: bool = True, **kw: Unpack[EncoderOptions]) -> None:
        super().__init__(model, **kw)
        self.id = ""
        self.sse = sse
        self._head = b""
        self._tail = b""
        self.chunks = 0
        self._tools: dict[ToolKey, tuple[str, str, list[str]]] = {}

    def start(self, id: str | None, model: str | None) -> None:
        if not self.begin(model):
            return
        self.id = id or ""
        self._head = b'{"candidates":[{"content":{"role":"model","parts":'
        self._tail = b'},"index":0}],"modelVersion":' + dumps(self.model)
        if self.id:
            self._tail += b',"responseId":' + dumps(self.id)
        self._tail += b"}"

    def _frame(self, payload: bytes) -> bytes:
        self.chunks += 1
        if self.sse:
            return b"data: " + payload + b"\n\n"
        return (b"[" if self.chunks == 1 else b",\r\n") + payload

    def _parts(self, parts: list[JSONObject]) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        self.out.append(self._frame(self._head + dumps(parts) + self._tail))

    def text(self, text: str) -> None:
        self._parts([{"text": text}])

    def thinking(self, text: str) -> None:
        self._parts([{"text": text, "thought": True}])

    def tool_start(self, key: ToolKey, id: str, name: str, signature: str | None = None) -> None:
        if not self.done and key not in self._tools:
            self.tools_seen = True
            self._tools[key] = (id, self.client_tool_name(name), [])

    def tool_args(self, key: ToolKey, delta: str) -> None:
        tool = self._tools.get(key)
        if tool is not None:
            tool[2].append(delta)

    def tool_end(self, key: ToolKey) -> None:
        tool = self._tools.pop(key, None)
        if tool is not None:
            self._parts([_call_part(tool[0], tool[1], "".join(tool[2]))])

    def stop(self) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        for key in list(self._tools):
            self.tool_end(key)
        chunk: JSONObject = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": ""}]},
                    "finishReason": gemini_finish(
                        effective_finish(self.finish_reason, self.tools_seen)
                    ),
                    "index": 0,
                }
            ],
        }
        if self.usage.seen:
            chunk["usageMetadata"] = gemini_usage(self.usage)
        chunk["modelVersion"] = self.model
        if self.id:
            chunk["responseId"] = self.id
        self.out.append(self._frame(dumps(chunk)))
        if not self.sse:
            self.out.append(b"]")
        self.done = True

    def error(self, status: int, message: str) -> None:
        if self.done:
            return
        body = dumps(family_error(Family.GEMINI, status, message))
        if self.sse:
            self.out.append(b"event: error\ndata: " + body + b"\n\n")
        else:
            self.out.append(self._frame(body) + b"]")
        self.done = True


def gemini_from_message(
    msg: Message, *, model: str, created: int, nonce: str, tool_names: ToolNames | None = None
) -> JSONObject:
    """`Message` → a whole GenerateContentResponse."""
    parts: list[JSONObject] = []
    for block in msg.blocks:
        if isinstance(block, TextBlock):
            parts.append({"text": block.text})
        elif isinstance(block, ThinkingBlock):
            if block.text:
                parts.append({"text": block.text, "thought": True})
        elif isinstance(block, ToolCallBlock):
            name = client_tool(tool_names, block.name).name
            parts.append(_call_part(block.id, name, block.arguments))
    reason = effective_finish(msg.finish, msg.has_tool_calls)
    out: JSONObject = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": gemini_finish(reason),
                "index": 0,
            }
        ],
    }
    if msg.usage.seen:
        out["usageMetadata"] = gemini_usage(msg.usage)
    out["modelVersion"] = model or msg.model
    if msg.id:
        out["responseId"] = msg.id
    return out
