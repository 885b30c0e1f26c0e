# -*- test-case-name: tests.formats.test_resp_nonstream -*-
"""The neutral ("hub") vocabulary every response decoder speaks and every encoder hears.

Why a hub: four formats make twelve cross pairs. Decoding each provider into one small set of
events and encoding each client out of it needs four decoders and four encoders instead of
twelve translators, and a fix to block indexes or terminal handling in one encoder reaches
every provider at once.

Streams use `Encoder`'s methods as the events (a decoder calls them directly, so no event
objects are allocated per delta). Whole responses use `Message`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from cliproxy import jsonutil
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.sse import SSEEvent

# Neutral finish reasons (translators.md §4.1 maps each format's reasons onto these).
STOP = "stop"
LENGTH = "length"
TOOL_USE = "tool_use"
STOP_SEQUENCE = "stop_sequence"
CONTENT_FILTER = "content_filter"
PAUSE = "pause"


@dataclass(slots=True)
class Usage:
    """Token counts as the provider reported them, in one common meaning.

    `input_tokens` counts every prompt token, cached ones included; `output_tokens` counts every
    generated token, reasoning included (OpenAI's meaning). Each encoder derives its client's
    fields from these (Claude subtracts the cached part back out).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    seen: bool = False
    #: the provider gave a cache-write figure (even 0): Chat usage then carries it
    cache_creation_reported: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cached(self) -> int:
        return self.cached_tokens

    @property
    def reasoning(self) -> int:
        return self.reasoning_tokens

    def replace_with(self, other: Usage) -> None:
        self.input_tokens = other.input_tokens
        self.output_tokens = other.output_tokens
        self.cached_tokens = other.cached_tokens
        self.cache_creation_tokens = other.cache_creation_tokens
        self.cache_creation_reported = other.cache_creation_reported
        self.reasoning_tokens = other.reasoning_tokens
        self.seen = other.seen


def as_int(value: JSON) -> int:
    """A token count from JSON: ints and integral floats count, anything else is 0."""
    # comparisons, not max(): this runs for every usage field of every answer
    if type(value) is int:  # the usual case first (bool is not int here)
        return value if value > 0 else 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if value > 0 else 0
    if isinstance(value, float) and value.is_integer():
        n = int(value)
        return n if n > 0 else 0
    return 0


def opt_str(value: JSON) -> str | None:
    """`value` if it is a string, else None."""
    return value if isinstance(value, str) else None


def openai_usage(raw: JSONObject, prompt: str, completion: str) -> Usage:
    """An OpenAI usage object → `Usage`.

    Chat names its counts `prompt`/`completion` and Responses `input`/`output`; the rest of
    the shape is shared: `<name>_tokens` and `<name>_tokens_details`.
    """
    in_details = raw.get(f"{prompt}_tokens_details")
    out_details = raw.get(f"{completion}_tokens_details")
    return Usage(
        input_tokens=as_int(raw.get(f"{prompt}_tokens")),
        output_tokens=as_int(raw.get(f"{completion}_tokens")),
        cached_tokens=as_int(in_details.get("cached_tokens"))
        if isinstance(in_details, dict)
        else 0,
        cache_creation_tokens=_cache_write(in_details),
        cache_creation_reported=isinstance(in_details, dict)
        and any(k in in_details for k in _CACHE_WRITE),
        reasoning_tokens=as_int(out_details.get("reasoning_tokens"))
        if isinstance(out_details, dict)
        else 0,
        seen=True,
    )


def _cache_write(details: JSON) -> int:
    """Prompt tokens written to the cache: Responses' `cache_write_tokens` (Codex), or the
    `cached_creation_tokens` CLIProxyAPI puts in Chat usage."""
    if not isinstance(details, dict):
        return 0
    return sum(as_int(details.get(k)) for k in _CACHE_WRITE)


_CACHE_WRITE = ("cache_write_tokens", "cached_creation_tokens")


#: Compact UTF-8 JSON, the way every upstream we copy writes it (a lone surrogate from the
#: upstream is \u-escaped). jsonutil's own function, not a wrapper: a call fewer per chunk.
dumps: Callable[[JSON], bytes] = jsonutil.dumps


def dumps_str(obj: JSON) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def loads_object(data: bytes) -> JSONObject | None:
    """Parse one event's JSON object; None for anything that is not a JSON object."""
    try:
        obj = jsonutil.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def arguments_object(arguments: str) -> JSONObject:
    """Tool arguments for clients that take an object (Claude `input`, Gemini `args`).

    Empty → `{}`. Text that is not a JSON object is kept, not dropped, as `{"_raw": text}` so
    the model can see what it produced and try again.
    """
    if not arguments or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A tool as the client declared it, for calls the upstream makes under another name.

    Attributes:
        name: the client's name for the tool (inside its namespace, if any).
        namespace: the Responses `namespace` tool it was declared in.
        custom: a Responses freeform (`custom`) tool: its call carries raw `input` text.
    """

    name: str
    namespace: str | None = None
    custom: bool = False


#: upstream tool name -> the client's tool (a plain string: just the client's name)
ToolNames = Mapping[str, "str | ClientTool"]

#: How a decoder tells its encoder which tool call an event belongs to: whatever the provider
#: keys calls by (a block or choice index, an item id), opaque to the encoder.
ToolKey = Hashable


class EncoderOptions(TypedDict):
    """The keyword arguments every `Encoder` takes, for subclasses that pass them on."""

    created: int
    nonce: str
    tool_names: NotRequired[ToolNames | None]


def client_tool(tool_names: ToolNames | None, name: str) -> ClientTool:
    """The client's tool for an upstream tool name (itself when it was never renamed)."""
    found = tool_names.get(name) if tool_names else None
    if found is None:
        return ClientTool(name)
    return ClientTool(found) if isinstance(found, str) else found


def new_nonce() -> str:
    return secrets.token_hex(6)


def effective_finish(reason: str | None, tools_seen: bool) -> str:
    """A plain stop after tool calls is a tool-use stop (Gemini and Codex say STOP/completed)."""
    if reason is None or reason == STOP:
        return TOOL_USE if tools_seen else STOP
    return reason


# --- whole (non-stream) responses ----------------------------------------------------------


@dataclass(slots=True)
class TextBlock:
    text: str


@dataclass(slots=True)
class ThinkingBlock:
    text: str
    signature: str = ""


@dataclass(slots=True)
class ToolCallBlock:
    id: str
    name: str
    arguments: str  # JSON text as the model produced it
    signature: str = ""


Block = TextBlock | ThinkingBlock | ToolCallBlock


@dataclass(slots=True)
class Message:
    """One finished assistant turn in neutral form."""

    id: str = ""
    model: str = ""
    blocks: list[Block] = field(default_factory=list)
    finish: str | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    #: images the model made, as `data:` URLs (Codex's image_generation_call results)
    images: list[str] = field(default_factory=list)

    def add_text(self, text: str) -> None:
        if not text:
            return
        last = self.blocks[-1] if self.blocks else None
        if isinstance(last, TextBlock):
            last.text += text
        else:
            self.blocks.append(TextBlock(text))

    def add_thinking(self, text: str, signature: str = "") -> None:
        if not text and not signature:
            return
        last = self.blocks[-1] if self.blocks else None
        if isinstance(last, ThinkingBlock) and not last.signature:
            last.text += text
            last.signature = signature
        else:
            self.blocks.append(ThinkingBlock(text, signature))

    @property
    def has_tool_calls(self) -> bool:
        return any(isinstance(b, ToolCallBlock) for b in self.blocks)


# --- streams -------------------------------------------------------------------------------


class Encoder:
    """A client encoder: neutral stream events in, client-framed bytes appended to `out`.

    `call_id_prefix` is how the client's own tool call ids start (a decoder inventing an id
    for a call that came without one uses it).

    Contract for decoders: call `set_usage` before `start` when one upstream event carries both
    (so a header that shows usage can show it); `start` may be skipped (encoders start lazily);
    `stop` and `error` are terminal, after them every call is ignored.
    """

    call_id_prefix = "call_"

    def __init__(
        self,
        model: str,
        *,
        created: int,
        nonce: str,
        tool_names: ToolNames | None = None,
    ) -> None:
        self.model = model
        self.created = created
        self.nonce = nonce
        self.tool_names = tool_names
        self.out: list[bytes] = []
        self.done = False
        self.started = False
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.tools_seen = False

    def drain(self) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def client_tool_name(self, name: str) -> str:
        return client_tool(self.tool_names, name).name

    def begin(self, model: str | None) -> bool:
        """Mark the stream started; False if it already was or has ended (then `start` returns).

        The upstream's model name is used only when the client's request named none.
        """
        if self.started or self.done:
            return False
        self.started = True
        if not self.model:
            self.model = model or ""
        return True

    # events; subclasses override the ones their format shows

    def start(self, id: str | None, model: str | None) -> None:
        raise NotImplementedError

    def text(self, text: str) -> None:
        raise NotImplementedError

    def thinking(self, text: str) -> None:
        raise NotImplementedError

    def signature(self, signature: str) -> None:
        """The opaque signature of the current (or just finished) thinking block."""

    def block_end(self) -> None:
        """The current text or thinking block is complete; more of the same kind starts anew."""

    def image(self, url: str) -> None:
        """An image the model made, as a `data:` URL (only Chat clients have a place for it)."""

    def tool_start(self, key: ToolKey, id: str, name: str, signature: str | None = None) -> None:
        raise NotImplementedError

    def tool_args(self, key: ToolKey, delta: str) -> None:
        raise NotImplementedError

    def tool_end(self, key: ToolKey) -> None:
        raise NotImplementedError

    def set_usage(self, usage: Usage) -> None:
        """Cumulative usage so far (the decoder keeps merging into the same object)."""
        self.usage = usage

    def finish(self, reason: str, stop_sequence: str | None = None) -> None:
        self.finish_reason = reason
        if stop_sequence:
            self.stop_sequence = stop_sequence

    def stop(self) -> None:
        raise NotImplementedError

    def error(self, status: int, message: str) -> None:
        raise NotImplementedError


class Decoder:
    """A provider decoder: one upstream `SSEEvent` in, calls on an `Encoder` out."""

    def __init__(self, sink: Encoder, *, nonce: str) -> None:
        self.sink = sink
        self.nonce = nonce
        self.usage = Usage()
        #: a finish reason was seen: a close without the terminal marker is still complete
        self.finished = False
        self.skipped = 0
        self._call_ids = 0

    def new_call_id(self) -> str:
        """An id for a tool call upstream sent without one (clients need one to answer it)."""
        self._call_ids += 1
        return f"{self.sink.call_id_prefix}{self.nonce}{self._call_ids}"

    def feed(self, event: SSEEvent) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Upstream closed. Emit the terminal sequence if the stream is complete enough."""
        if self.finished and not self.sink.done:
            self.sink.stop()
