# -*- test-case-name: tests.amp.test_rewriter -*-
"""Making locally served answers look the way Amp expects.

* The model name the client asked for comes back (`model`, `message.model`,
  `response.model`, `modelVersion`, `response.modelVersion`).
* `tool_use` and `thinking` blocks carry a `signature` (Amp's TUI reads its length).
* Tool names follow Amp's casing (`bash` -> `Bash`), or the casing the request itself
  advertised when it did so without conflict.
* Non-stream answers drop thinking blocks next to tool calls when the provider's
  thinking cannot be replayed (mapped models, non-Claude providers); streams keep them.

Streams are rewritten line by line with a stateful framer: a `data:` line is only
touched once it is complete, whatever the TCP reads did to it. Lines that need no change
pass through byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

#: Amp's mode whitelist compares tool names case-sensitively
CANONICAL_TOOL_NAMES = {
    "bash": "Bash",
    "read": "Read",
    "grep": "Grep",
    "glob": "glob",
    "task": "Task",
    "check": "Check",
}
#: non-stream bodies up to this size are rewritten; larger ones pass unchanged
MAX_BUFFERED = 2 * 1024 * 1024

_SIGNED = ("tool_use", "thinking")
#: what besides `model` may need a change
_OTHER_HINTS = (b'"modelVersion', b'"content', b'"message"', b'"response"')
_HINTS = (
    b'"model',
    b'"modelVersion',
    b'"content_block"',
    b'"content"',
    b'"message"',
    b'"response"',
)


def request_tool_names(body: Any) -> dict[str, str]:
    """lowercase name -> the casing the request used; "" where the request used two."""
    if not isinstance(body, dict):
        return {}
    names: dict[str, str] = {}

    def record(name: Any) -> None:
        if not isinstance(name, str) or not name:
            return
        key = name.lower()
        if key in names and names[key] != name:
            names[key] = ""  # conflicting advertisements: force nothing
        elif key not in names:
            names[key] = name

    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                record(tool.get("name"))
                fn = tool.get("function")
                if isinstance(fn, dict):
                    record(fn.get("name"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        record(choice.get("name"))
    return names


def canonical_tool_name(name: str, requested: dict[str, str]) -> str | None:
    """The name Amp wants for `name`, or None to leave it alone."""
    key = name.lower()
    if key in requested:
        return requested[key] or None
    return CANONICAL_TOOL_NAMES.get(key)


def looks_like_sse(data: bytes) -> bool:
    for line in data.split(b"\n"):
        line = line.strip()
        if line.startswith((b"data:", b"event:")):
            return True
    return False


class ResponseRewriter:
    """Per-request rewriting state.

    Args:
        original_model: the model name the client sent ("" leaves model fields alone).
        tool_names: `request_tool_names(request_body)`.
        suppress_thinking: drop thinking blocks beside tool calls in non-stream answers.
    """

    def __init__(
        self,
        original_model: str = "",
        tool_names: dict[str, str] | None = None,
        suppress_thinking: bool = False,
    ) -> None:
        self.original_model = original_model
        self.tool_names = tool_names or {}
        self.suppress_thinking = suppress_thinking
        self._partial = b""
        # a chunk that already names the right model and has nothing else to fix (most
        # OpenAI chunks) is passed on without being parsed
        self._model_ok = (
            b'"model":' + json.dumps(original_model).encode() if original_model else b""
        )

    # -- one JSON object -----------------------------------------------------------------

    def _fix_block(self, block: Any) -> bool:
        if not isinstance(block, dict):
            return False
        changed = False
        kind = block.get("type")
        if kind in _SIGNED and "signature" not in block:
            block["signature"] = ""
            changed = True
        if kind == "tool_use" and isinstance(block.get("name"), str):
            name = block["name"]
            wanted = canonical_tool_name(name, self.tool_names)
            if wanted is not None and wanted != name:
                block["name"] = wanted
                changed = True
        return changed

    def _fix_model(self, obj: dict[str, Any]) -> bool:
        if not self.original_model:
            return False
        changed = False
        message, response = obj.get("message"), obj.get("response")
        places = [(obj, "model"), (obj, "modelVersion"), (message, "model")]
        places += [(response, "model"), (response, "modelVersion")]
        for holder, name in places:
            if isinstance(holder, dict) and name in holder:
                if holder[name] != self.original_model:
                    holder[name] = self.original_model
                    changed = True
        return changed

    def rewrite_object(self, obj: Any, *, stream: bool) -> bool:
        """Apply every rule to a parsed JSON object in place; True if it changed."""
        if not isinstance(obj, dict):
            return False
        changed = False
        content = obj.get("content")
        if isinstance(content, list):
            for block in content:
                changed |= self._fix_block(block)
            if not stream and self.suppress_thinking:
                has_tool = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
                if has_tool:
                    kept = [
                        b
                        for b in content
                        if not (isinstance(b, dict) and b.get("type") == "thinking")
                    ]
                    if len(kept) != len(content):
                        obj["content"] = kept
                        changed = True
        changed |= self._fix_block(obj.get("content_block"))
        changed |= self._fix_model(obj)
        return changed

    def rewrite_json(self, data: bytes, *, stream: bool = False) -> bytes:
        """A whole JSON document rewritten; the same bytes when nothing changed."""
        if not data or not any(h in data for h in _HINTS):
            return data
        if self._model_ok and self._model_ok in data and not any(h in data for h in _OTHER_HINTS):
            return data
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return data
        if not self.rewrite_object(obj, stream=stream):
            return data
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def rewrite_body(self, data: bytes, content_type: str = "") -> bytes:
        """A whole non-stream body: SSE-looking bodies line by line, JSON up to 2 MiB."""
        if "stream" in content_type.lower() or looks_like_sse(data):
            return self.feed(data) + self.flush()
        if len(data) > MAX_BUFFERED:
            return data
        return self.rewrite_json(data)

    # -- streams -------------------------------------------------------------------------

    def _line(self, line: bytes) -> bytes:
        # `line` includes its line end
        body = line.rstrip(b"\r\n")
        if not body.startswith(b"data:"):
            return line
        payload = body[5:]
        lead = b" " if payload.startswith(b" ") else b""
        payload = payload[len(lead) :]
        if not payload.startswith(b"{"):
            return line
        new = self.rewrite_json(payload, stream=True)
        if new is payload:
            return line
        return b"data:" + lead + new + line[len(body) :]

    def feed(self, chunk: bytes) -> bytes:
        """Rewrite the complete lines in `chunk` (plus what was held back); hold the rest."""
        data = self._partial + chunk if self._partial else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._partial = data
            return b""
        self._partial = data[end + 1 :]
        lines = data[: end + 1].splitlines(keepends=True)
        return b"".join(self._line(line) for line in lines)

    def flush(self) -> bytes:
        """End of stream: the last unterminated line, rewritten if it is complete JSON."""
        rest, self._partial = self._partial, b""
        return self._line(rest) if rest else b""


class RewritingTranslator:
    """Wraps a routing stream translator so every event it emits is rewritten."""

    def __init__(self, inner: Any, rewriter: ResponseRewriter) -> None:
        self._inner = inner
        self._rw = rewriter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _out(self, parts: list[bytes], last: bool = False) -> list[bytes]:
        data = self._rw.feed(b"".join(parts)) if parts else b""
        if last:
            data += self._rw.flush()
        return [data] if data else []

    def feed(self, event: Any) -> list[bytes]:
        return self._out(self._inner.feed(event))

    def finish(self) -> list[bytes]:
        return self._out(self._inner.finish(), last=True)

    def error(self, status: int, message: str) -> list[bytes]:
        return self._out(self._inner.error(status, message), last=True)
