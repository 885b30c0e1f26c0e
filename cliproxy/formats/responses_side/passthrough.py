# -*- test-case-name: tests.formats.test_resp_passthrough -*-
"""The fast path: provider and client speak the same format.

Each event is relayed as the exact bytes it arrived as. Only the few events that carry usage
or end the stream are parsed, chosen by cheap byte checks, so the cost per event stays a
substring search. The client encoder of the same format is kept only to write error events.

The byte checks are `data.find(x) >= 0`, not `x in data`: CPython's `bytes.__contains__`
first tries `x` as an integer and builds (then drops) a TypeError each time, which cost more
than the search itself.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side._wire import DONE
from cliproxy.formats.responses_side.decode_chat import usage_from_chat
from cliproxy.formats.responses_side.decode_claude import usage_from_claude
from cliproxy.formats.responses_side.decode_gemini import first_candidate, unwrap, usage_from_gemini
from cliproxy.formats.responses_side.decode_responses import usage_from_responses
from cliproxy.formats.responses_side.encode_gemini import GeminiEncoder
from cliproxy.formats.responses_side.encode_responses import ResponsesEncoder
from cliproxy.formats.responses_side.ir import Encoder, Usage, dumps, loads_object
from cliproxy.formats.responses_side.stream import (
    INCOMPLETE_MESSAGE,
    INCOMPLETE_STATUS,
    StreamTranslator,
)
from cliproxy.formats.sse import SSEEvent


def _whole(raw: bytes) -> bool:
    return raw.endswith(b"\n\n") or raw.endswith(b"\r\n\r\n") or raw.endswith(b"\r\r")


def _terminated(raw: bytes) -> bytes:
    """An event cut off by the upstream close still reaches the client as a whole event."""
    return raw if _whole(raw) else raw.rstrip(b"\r\n") + b"\n\n"


#: the client encoder a pass-through keeps to write error events
_E = TypeVar("_E", bound=Encoder)


class PassThrough(StreamTranslator, Generic[_E]):
    """Common bookkeeping; subclasses look at the events that matter."""

    def __init__(self, errors: _E) -> None:
        self._errors = errors
        self.done = False
        self.usage = Usage()
        self.skipped = 0
        #: a finish reason was seen: a close without the end marker only needs the marker
        self.finished = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self.done:
            return []
        if not _plausible(event.data):
            # `data:` empty, blank or not a JSON value: OpenAI's SDK dies on json.loads("")
            # (CLIProxyAPI #2460). Dropped and counted; the relay logs the count.
            self.skipped += 1
            return []
        if not _whole(event.raw) and not _complete_json(event.data):
            # the last event of a stream cut short: half a JSON object would break the client
            self.skipped += 1
            return []
        try:
            out = self._relay(event)
        except Exception:
            # looking inside failed (a bug, not the client's problem): still relay the bytes
            self.skipped += 1
            out = [_terminated(event.raw)]
        return out

    def _relay(self, event: SSEEvent) -> list[bytes]:
        raise NotImplementedError

    def _complete(self) -> list[bytes]:
        """The end marker the upstream did not send, for a stream that is otherwise done."""
        return []

    def finish(self) -> list[bytes]:
        if self.done:
            return []
        if self.finished:
            self.done = True
            return self._complete()
        return self.error(INCOMPLETE_STATUS, INCOMPLETE_MESSAGE)

    def error(self, status: int, message: str) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        try:
            self._errors.error(status, message)
        except Exception:
            pass
        return self._errors.drain()

    def _parse(self, data: bytes) -> JSONObject | None:
        obj = loads_object(data)
        if obj is None:
            self.skipped += 1
        return obj


class ClaudePassThrough(PassThrough[Encoder]):
    def __init__(self, errors: Encoder) -> None:
        super().__init__(errors)
        self._raw_usage: JSONObject = {}

    def _relay(self, event: SSEEvent) -> list[bytes]:
        out = [_terminated(event.raw)]
        name = event.event
        data = event.data
        if name is None:
            # no `event:` line: sniff the type, parsing only what may matter
            if data.find(b'"message_') < 0 and data.find(b'"error"') < 0:
                return out
            obj = self._parse(data)
            name = obj.get("type") if obj else None
        elif name in ("message_start", "message_delta", "error"):
            obj = self._parse(data)
        else:
            obj = None
        if name == "message_stop":
            self.done = True
        elif name == "error":
            self.done = True
        elif obj is not None:
            raw_usage = None
            if name == "message_start":
                message = obj.get("message")
                raw_usage = message.get("usage") if isinstance(message, dict) else None
            elif name == "message_delta":
                raw_usage = obj.get("usage")
                delta = obj.get("delta")
                if isinstance(delta, dict) and delta.get("stop_reason"):
                    self.finished = True
            if isinstance(raw_usage, dict):
                self._raw_usage.update({k: v for k, v in raw_usage.items() if v is not None})
                self.usage.replace_with(usage_from_claude(self._raw_usage))
        return out

    def _complete(self) -> list[bytes]:
        return [b'event: message_stop\ndata: {"type":"message_stop"}\n\n']


class ChatPassThrough(PassThrough[Encoder]):
    """Parses only chunks with a usage object, a finish reason or an error body."""

    def _relay(self, event: SSEEvent) -> list[bytes]:
        out = [_terminated(event.raw)]
        data = event.data
        if data[:6] == b"[DONE]":
            self.done = True
            return out
        if _is_error_body(data):
            obj = self._parse(data)
            if obj is not None and "error" in obj and not obj.get("choices"):
                self.done = True  # an error chunk ends a chat stream; no [DONE] follows
            return out
        # with include_usage every chunk says "usage":null: only an object is worth parsing
        if (
            data.find(b'"usage":{') >= 0
            or data.find(b'"usage": {') >= 0
            or data.find(b'"finish_reason":"') >= 0
            or data.find(b'"finish_reason": "') >= 0
        ):
            obj = self._parse(data)
            if obj is not None:
                if isinstance(obj.get("usage"), dict):
                    self.usage.replace_with(usage_from_chat(obj["usage"]))
                for choice in obj.get("choices") or ():
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        self.finished = True
        return out

    def _complete(self) -> list[bytes]:
        return [DONE]


class ResponsesPassThrough(PassThrough[ResponsesEncoder]):
    """Also back-fills `response.completed` whose `output` is empty (translators.md §1.1)."""

    _TERMINAL = ("response.completed", "response.incomplete", "response.failed")
    _PARSED = ("response.created", "response.output_item.done", "error") + _TERMINAL

    def __init__(self, errors: ResponsesEncoder) -> None:
        super().__init__(errors)
        self._items: dict[int, JSONObject] = {}
        self._saw_error = False
        self._last = b""

    def _relay(self, event: SSEEvent) -> list[bytes]:
        data = event.data
        self._last = data
        name = event.event
        obj = None
        if name is None and data.find(b'"type"') >= 0:
            obj = self._parse(data)
            name = obj.get("type") if obj else None
        if name not in self._PARSED:
            return [_terminated(event.raw)]
        if obj is None:
            obj = self._parse(data)
            if obj is None:
                return [_terminated(event.raw)]
        if name == "response.created":
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                errors = self._errors
                errors.started = True
                errors.id = response["id"]
                if isinstance(response.get("created_at"), int):
                    errors.created = response["created_at"]
        elif name == "response.output_item.done":
            index = obj.get("output_index")
            if isinstance(index, int) and isinstance(obj.get("item"), dict):
                self._items[index] = obj["item"]
        elif name == "error":
            self._saw_error = True
        else:
            self.done = True
            response = obj.get("response")
            if isinstance(response, dict):
                if isinstance(response.get("usage"), dict):
                    self.usage.replace_with(usage_from_responses(response["usage"]))
                if not response.get("output") and self._items and name != "response.failed":
                    response["output"] = [self._items[i] for i in sorted(self._items)]
                    return [b"event: " + name.encode() + b"\ndata: " + dumps(obj) + b"\n\n"]
        return [_terminated(event.raw)]

    def finish(self) -> list[bytes]:
        if not self.done and self._saw_error:
            self.done = True  # upstream already told the client what went wrong
            return []
        return super().finish()

    def error(self, status: int, message: str) -> list[bytes]:
        if not self.done:
            self._errors.seq = _last_sequence(self._last) + 1
        return super().error(status, message)


def _plausible(data: bytes) -> bool:
    """A cheap shape check (no parse on the fast path): a JSON object/array, or [DONE]."""
    data = data.strip()
    if data[:1] == b"{":
        return data[-1:] == b"}"
    if data[:1] == b"[":
        return data[-1:] == b"]"  # also [DONE]
    return False


def _complete_json(data: bytes) -> bool:
    return data.strip() == b"[DONE]" or loads_object(data) is not None


def _last_sequence(data: bytes) -> int:
    at = data.rfind(b'"sequence_number":')
    if at < 0:
        return -1
    digits = bytearray()
    for byte in data[at + 18 : at + 40]:
        if 48 <= byte <= 57:
            digits.append(byte)
        elif digits or byte not in b" \t":
            break
    return int(digits) if digits else -1


class GeminiPassThrough(PassThrough[GeminiEncoder]):
    """With `sse=False` the data of each event is re-framed as a JSON array element."""

    def __init__(self, errors: GeminiEncoder, *, sse: bool = True) -> None:
        super().__init__(errors)
        self._sse = sse
        self._chunks = 0

    def _relay(self, event: SSEEvent) -> list[bytes]:
        data = event.data
        if data[:6] == b"[DONE]":
            return []
        if self._sse:
            out = [_terminated(event.raw)]
        else:
            self._chunks += 1
            self._errors.chunks = self._chunks
            out = [(b"[" if self._chunks == 1 else b",\r\n") + data]
        # Gemini repeats cumulative usage on every chunk: read the first one (prompt size,
        # in case the stream dies) and the finishing one (the totals), not the rest
        if (
            data.find(b'"finishReason"') >= 0
            or _is_error_body(data)
            or (not self.usage.seen and data.find(b'"usageMetadata"') >= 0)
        ):
            obj = self._parse(data)
            if obj is not None:
                obj = unwrap(obj)
                if isinstance(obj.get("usageMetadata"), dict):
                    self.usage.replace_with(usage_from_gemini(obj["usageMetadata"]))
                cand = first_candidate(obj)
                if isinstance(obj.get("error"), dict) or (cand and cand.get("finishReason")):
                    self.done = True
                    if not self._sse:
                        out.append(b"]")
        return out


def _is_error_body(data: bytes) -> bool:
    return data[:32].lstrip().startswith(b'{"error"')
