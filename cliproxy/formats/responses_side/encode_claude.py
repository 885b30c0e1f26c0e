# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Neutral form → Claude Messages (stream events and whole messages)."""

from __future__ import annotations

import re
from typing import Unpack

from cliproxy.formats import Family
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side._wire import family_error, sse
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    PAUSE,
    STOP_SEQUENCE,
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
    arguments_object,
    client_tool,
    dumps,
    effective_finish,
)

_FINISH = {
    LENGTH: "max_tokens",
    TOOL_USE: "tool_use",
    STOP_SEQUENCE: "stop_sequence",
    CONTENT_FILTER: "refusal",
    PAUSE: "pause_turn",
}

_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def claude_stop_reason(reason: str) -> str:
    return _FINISH.get(reason, "end_turn")


def claude_tool_id(id: str, nonce: str, n: int) -> str:
    """Claude insists on `^[a-zA-Z0-9_-]+$` tool ids."""
    return _BAD_ID_CHARS.sub("_", id) if id else f"toolu_{nonce}{n}"


def claude_usage(usage: Usage) -> JSONObject:
    fresh = usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens
    out: JSONObject = {"input_tokens": max(fresh, 0), "output_tokens": usage.output_tokens}
    if usage.cache_creation_tokens:
        out["cache_creation_input_tokens"] = usage.cache_creation_tokens
    if usage.cached_tokens:
        out["cache_read_input_tokens"] = usage.cached_tokens
    return out


_TEXT, _THINKING, _TOOL = 1, 2, 3


class ClaudeEncoder(Encoder):
    """Claude SSE with one open content block at a time and indexes counted from 0."""

    call_id_prefix = "toolu_"

    def __init__(self, model: str, **kw: Unpack[EncoderOptions]) -> None:
        super().__init__(model, **kw)
        self.id = ""
        self._index = -1  # index of the open block, -1 when none
        self._kind = 0
        self._open_key: ToolKey = None
        self._next = 0
        self._tools: dict[ToolKey, int] = {}

    def start(self, id: str | None, model: str | None) -> None:
        if not self.begin(model):
            return
        self.id = id or f"msg_{self.nonce}"
        usage = claude_usage(self.usage)
        message: JSONObject = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        self.out.append(sse("message_start", {"type": "message_start", "message": message}))

    def _close(self) -> None:
        if self._index >= 0:
            self.out.append(
                b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
                + str(self._index).encode()
                + b"}\n\n"
            )
            self._index = -1
            self._kind = 0
            self._open_key = None

    def _open(self, kind: int, block: JSONObject) -> int:
        if not self.started:
            self.start(None, None)
        self._close()
        index = self._index = self._next
        self._next += 1
        self._kind = kind
        self.out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _delta(self, index: int, delta: JSONObject) -> None:
        self.out.append(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(index).encode()
            + b',"delta":'
            + dumps(delta)
            + b"}\n\n"
        )

    def text(self, text: str) -> None:
        if self.done:
            return
        if self._kind != _TEXT:
            self._open(_TEXT, {"type": "text", "text": ""})
        self._delta(self._index, {"type": "text_delta", "text": text})

    def thinking(self, text: str) -> None:
        if self.done:
            return
        if self._kind != _THINKING:
            self._open(_THINKING, {"type": "thinking", "thinking": ""})
        self._delta(self._index, {"type": "thinking_delta", "thinking": text})

    def signature(self, signature: str) -> None:
        if self.done:
            return
        if self._kind != _THINKING:
            # a signature with no visible thinking (Codex encrypted reasoning): its own block
            self._open(_THINKING, {"type": "thinking", "thinking": ""})
        self._delta(self._index, {"type": "signature_delta", "signature": signature})

    def block_end(self) -> None:
        if not self.done and self._kind in (_TEXT, _THINKING):
            self._close()

    def tool_start(self, key: ToolKey, id: str, name: str, signature: str | None = None) -> None:
        if self.done or key in self._tools:
            return
        self.tools_seen = True
        block = {
            "type": "tool_use",
            "id": claude_tool_id(id, self.nonce, self._next),
            "name": self.client_tool_name(name),
            "input": {},
        }
        self._tools[key] = self._open(_TOOL, block)
        self._open_key = key

    def tool_args(self, key: ToolKey, delta: str) -> None:
        index = self._tools.get(key)
        if self.done or index is None or not delta:
            return
        # deltas for a tool whose block was closed by a later one (an upstream interleaving
        # parallel calls) still go to that tool's own index, so nothing is lost
        self._delta(index, {"type": "input_json_delta", "partial_json": delta})

    def tool_end(self, key: ToolKey) -> None:
        if not self.done and self._kind == _TOOL and self._open_key == key:
            self._close()

    def stop(self) -> None:
        if self.done:
            return
        if not self.started:
            self.start(None, None)
        self._close()
        reason = claude_stop_reason(effective_finish(self.finish_reason, self.tools_seen))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": self.stop_sequence},
            "usage": claude_usage(self.usage),
        }
        self.out.append(sse("message_delta", delta))
        self.out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        self.done = True

    def error(self, status: int, message: str) -> None:
        if self.done:
            return
        self.out.append(sse("error", family_error(Family.CLAUDE, status, message)))
        self.done = True


def claude_from_message(
    msg: Message, *, model: str, created: int, nonce: str, tool_names: ToolNames | None = None
) -> JSONObject:
    """`Message` → a whole Claude `message` object."""
    content: list[JSONObject] = []
    for n, block in enumerate(msg.blocks):
        if isinstance(block, TextBlock):
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, ThinkingBlock):
            content.append(
                {"type": "thinking", "thinking": block.text, "signature": block.signature}
            )
        elif isinstance(block, ToolCallBlock):
            content.append(
                {
                    "type": "tool_use",
                    "id": claude_tool_id(block.id, nonce, n),
                    "name": client_tool(tool_names, block.name).name,
                    "input": arguments_object(block.arguments),
                }
            )
    reason = effective_finish(msg.finish, msg.has_tool_calls)
    return {
        "id": msg.id or f"msg_{nonce}",
        "type": "message",
        "role": "assistant",
        "model": model or msg.model,
        "content": content,
        "stop_reason": claude_stop_reason(reason),
        "stop_sequence": msg.stop_sequence if reason == STOP_SEQUENCE else None,
        "usage": claude_usage(msg.usage),
    }
