# -*- test-case-name: tests.formats.test_completions -*-
"""Legacy `/v1/completions`, served as a one-message chat and turned back into
`text_completion` objects (core.md §1.3)."""

from __future__ import annotations

import json
from typing import Protocol

from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side.ir import Usage
from cliproxy.formats.sse import SSEEvent


class ChatStream(Protocol):
    """What `CompletionsStream` wraps: a translator whose output is Chat chunks."""

    @property
    def done(self) -> bool: ...

    def feed(self, event: SSEEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, status: int, message: str) -> list[bytes]: ...


_PASSED = (
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "seed",
    "stream",
    "stream_options",
)


def completion_to_chat_request(body: JSONObject) -> JSONObject:
    prompt = body.get("prompt", "Complete this:")
    if isinstance(prompt, list):
        prompt = "\n".join(p for p in prompt if isinstance(p, str))
    chat: JSONObject = {
        "model": body.get("model"),
        "messages": [{"role": "user", "content": prompt}],
    }
    for k in _PASSED:
        if k in body:
            chat[k] = body[k]
    return chat


def _choice(choice: JSONObject, text: str) -> JSONObject:
    return {
        "text": text,
        "index": choice.get("index", 0),
        "logprobs": None,
        "finish_reason": choice.get("finish_reason"),
    }


def _to_completion(chat: JSONObject, part: str) -> JSONObject:
    """A chat answer (`part="message"`) or chunk (`part="delta"`) as a text_completion."""
    choices = []
    for c in chat.get("choices") or []:
        content = (c.get(part) or {}).get("content")
        choices.append(_choice(c, content if isinstance(content, str) else ""))
    out = {
        "id": chat.get("id", ""),
        "object": "text_completion",
        "created": chat.get("created", 0),
        "model": chat.get("model", ""),
        "choices": choices,
    }
    if chat.get("usage") is not None:
        out["usage"] = chat["usage"]
    return out


def chat_to_completion(chat: JSONObject) -> JSONObject:
    if not isinstance(chat, dict) or "choices" not in chat:
        return chat
    return _to_completion(chat, "message")


def chat_chunk_to_completion(chunk: JSONObject) -> JSONObject:
    if "choices" not in chunk:
        return chunk
    return _to_completion(chunk, "delta")


def _rewrite(frames: list[bytes]) -> list[bytes]:
    out = []
    for frame in frames:
        if not frame.startswith(b"data: ") or frame.startswith(b"data: [DONE]"):
            out.append(frame)
            continue
        try:
            chunk = json.loads(frame[6:].strip())
        except ValueError:
            out.append(frame)
            continue
        if isinstance(chunk, dict) and chunk.get("object") == "chat.completion.chunk":
            chunk = chat_chunk_to_completion(chunk)
        out.append(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
    return out


class CompletionsStream:
    """Wraps a chat-format StreamTranslator so its chunks come out as text_completion."""

    def __init__(self, inner: ChatStream) -> None:
        self.inner = inner

    def feed(self, event: SSEEvent) -> list[bytes]:
        return _rewrite(self.inner.feed(event))

    def finish(self) -> list[bytes]:
        return _rewrite(self.inner.finish())

    def error(self, status: int, message: str) -> list[bytes]:
        return self.inner.error(status, message)

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def usage(self) -> Usage:
        found = getattr(self.inner, "usage", None)
        return found if isinstance(found, Usage) else Usage()
