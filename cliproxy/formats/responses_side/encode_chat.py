# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Neutral form → OpenAI Chat Completions (stream chunks and whole completions)."""

from __future__ import annotations

from typing import Unpack

from cliproxy.formats import Family
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side._wire import DONE, data_line, family_error
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    TOOL_USE,
    Encoder,
    EncoderOptions,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolKey,
    ToolNames,
    Usage,
    client_tool,
    dumps,
    effective_finish,
)

_FINISH = {LENGTH: "length", TOOL_USE: "tool_calls", CONTENT_FILTER: "content_filter"}


def chat_finish(reason: str) -> str:
    return _FINISH.get(reason, "stop")


def chat_usage(usage: Usage) -> JSONObject:
    out: JSONObject = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    details: JSONObject = {}
    if usage.cached_tokens:
        details["cached_tokens"] = usage.cached_tokens
    if usage.cache_creation_tokens or usage.cache_creation_reported:
        # CLIProxyAPI's field for the prompt tokens written to the cache (Claude, Codex)
        details.setdefault("cached_tokens", usage.cached_tokens)
        details["cached_creation_tokens"] = usage.cache_creation_tokens
    if details:
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def _tool_call(
    index: int | None, id: str, name: str, arguments: str, signature: str | None
) -> JSONObject:
    call: JSONObject = {}
    if index is not None:
        call["index"] = index
    call.update({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
    if signature:
        # the shape Gemini's own OpenAI-compatible API uses; the request side reads it back
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def _image(url: str, index: int) -> JSONObject:
    return {"type": "image_url", "image_url": {"url": url}, "index": index}


class ChatEncoder(Encoder):
    """`data: <chunk>\\n\\n` per event; usage rides on the finish chunk; then `data: [DONE]`."""

    def __init__(self, model: str, **kw: Unpack[EncoderOptions]) -> None:
        super().__init__(model, **kw)
        self.id = ""
        self._head = b""
        self._tools: dict[ToolKey, int] = {}

    def start(self, id: str | None, model: str | None) -> None:
        if not self.begin(model):
            return
        self.id = id or f"chatcmpl-{self.nonce}"
        head = dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
            }
        )
        # every chunk shares this prefix; only the delta differs (no dict per delta)
        self._head = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._delta({"role": "assistant", "content": ""})

    def _delta(self, delta: JSONObject) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        self.out.append(self._head + dumps(delta) + b',"finish_reason":null}]}\n\n')

    def text(self, text: str) -> None:
        self._delta({"content": text})

    def thinking(self, text: str) -> None:
        self._delta({"reasoning_content": text})

    def image(self, url: str) -> None:
        self._delta({"role": "assistant", "images": [_image(url, 0)]})

    def tool_start(self, key: ToolKey, id: str, name: str, signature: str | None = None) -> None:
        if self.done or key in self._tools:
            return
        index = self._tools[key] = len(self._tools)
        self.tools_seen = True
        call = _tool_call(index, id, self.client_tool_name(name), "", signature)
        self._delta({"tool_calls": [call]})

    def tool_args(self, key: ToolKey, delta: str) -> None:
        index = self._tools.get(key)
        if index is not None and delta:
            self._delta({"tool_calls": [{"index": index, "function": {"arguments": delta}}]})

    def tool_end(self, key: ToolKey) -> None:
        pass

    def stop(self) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        reason = chat_finish(effective_finish(self.finish_reason, self.tools_seen))
        chunk = self._head + b'{},"finish_reason":' + dumps(reason) + b"}]"
        if self.usage.seen:
            chunk += b',"usage":' + dumps(chat_usage(self.usage))
        self.out.append(chunk + b"}\n\n")
        self.out.append(DONE)
        self.done = True

    def error(self, status: int, message: str) -> None:
        if self.done:
            return
        # a chat stream that failed ends without [DONE] (the SDKs raise on the error chunk)
        self.out.append(data_line(family_error(Family.OPENAI, status, message)))
        self.done = True


def chat_from_message(
    msg: Message, *, model: str, created: int, nonce: str, tool_names: ToolNames | None = None
) -> JSONObject:
    """`Message` → a whole `chat.completion` object."""
    texts = [b.text for b in msg.blocks if isinstance(b, TextBlock)]
    thoughts = [b.text for b in msg.blocks if isinstance(b, ThinkingBlock) and b.text]
    calls = [
        _tool_call(
            None,
            b.id,
            client_tool(tool_names, b.name).name,
            b.arguments or "{}",
            b.signature,
        )
        for b in msg.blocks
        if isinstance(b, ToolCallBlock)
    ]
    message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    if msg.images:
        message["images"] = [_image(url, n) for n, url in enumerate(msg.images)]
    out: JSONObject = {
        "id": msg.id or f"chatcmpl-{nonce}",
        "object": "chat.completion",
        "created": created,
        "model": model or msg.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": chat_finish(effective_finish(msg.finish, bool(calls))),
                "logprobs": None,
            }
        ],
    }
    if msg.usage.seen:
        out["usage"] = chat_usage(msg.usage)
    return out
