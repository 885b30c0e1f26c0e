# -*- test-case-name: tests.formats.test_requests_roundtrip -*-
"""The intermediate representation every request format is parsed into and emitted from.

Why a hub rather than twelve hand-written pairs: with four formats there are twelve
directions, and every feature (images, tool ids, thinking, stop sequences...) would have to be
mapped twelve times, each pair drifting in its own way (the Go code shows exactly that: one
pair forwards `max_tokens`, the next forgets it). With a hub each format has one parser and
one emitter, a feature is mapped once per format, and a round-trip property test over the
hub checks every pair at once. Per-pair quirks that matter survive as small decisions inside
an emitter (for example: only a Claude target needs tool ids sanitised).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cliproxy.formats.json_types import JSONObject


@dataclass
class Text:
    text: str
    #: a Claude `cache_control` breakpoint the client put on this part (Claude targets only)
    cache: JSONObject | None = None


@dataclass
class Media:
    """An image, document or audio clip, carried inline (base64) or by reference.

    Exactly one of `data`, `url`, `file_id` is normally set.
    """

    kind: str  # "image" | "document" | "audio" | "video"
    mime: str | None = None
    data: str | None = None  # base64, no data: prefix
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    detail: str | None = None  # OpenAI image detail
    cache: JSONObject | None = None  # a client `cache_control` (Claude targets only)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text of an object
    signature: str | None = None  # a Gemini thought signature attached to the call


@dataclass
class ToolResult:
    id: str
    name: str | None
    content: list[Text | Media]
    is_error: bool = False
    cache: JSONObject | None = None  # a client `cache_control` (Claude targets only)


@dataclass
class Thinking:
    text: str
    signature: str | None = None
    redacted: str | None = None  # Claude redacted_thinking data


Part = Text | Media | ToolCall | ToolResult | Thinking


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    parts: list[Part]
    #: a turn of its own, never merged with its neighbours (a Claude client's mid-conversation
    #: system message, carried as a user `<system-reminder>` turn: see system_reminder)
    standalone: bool = False


@dataclass
class Tool:
    name: str
    description: str = ""
    parameters: JSONObject | None = None
    kind: str = "function"  # "function" | "web_search"
    options: JSONObject = field(default_factory=dict)  # web_search: allowed_domains, ...
    cache: JSONObject | None = None  # a client `cache_control` (Claude targets only)


@dataclass
class ToolChoice:
    mode: str  # "auto" | "none" | "required" | "tool"
    name: str | None = None


@dataclass
class Reasoning:
    """Thinking settings as the client expressed them (see thinking.py for the vocabulary)."""

    mode: str | None  # "none" | "auto" | "level" | "budget" | None (only include_thoughts given)
    level: str | None = None
    budget: int | None = None
    include_thoughts: bool | None = None
    summary: str | None = None  # Responses reasoning.summary


@dataclass
class ResponseFormat:
    type: str  # "text" | "json_object" | "json_schema"
    name: str | None = None
    schema: JSONObject | None = None
    strict: bool | None = None


@dataclass
class Conversation:
    system: list[Text] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    user: str | None = None
    #: an OpenAI processing tier ("priority", ...); Claude clients' `speed: fast` is priority
    service_tier: str | None = None


def coalesce(messages: list[Message]) -> list[Message]:
    """Merge consecutive user or assistant messages, tool results first in a user message.

    Claude and Gemini want one turn per role, and Claude wants the tool_result blocks at the
    head of the user turn that answers a tool_use turn.
    """
    out: list[Message] = []
    for msg in messages:
        if (
            out
            and msg.role != "system"
            and out[-1].role == msg.role
            and not (msg.standalone or out[-1].standalone)
        ):
            out[-1] = Message(msg.role, out[-1].parts + msg.parts)
        else:
            out.append(Message(msg.role, list(msg.parts), msg.standalone))
    for msg in out:
        if msg.role == "user":
            results = [p for p in msg.parts if isinstance(p, ToolResult)]
            if results and len(results) != len(msg.parts):
                msg.parts = results + [p for p in msg.parts if not isinstance(p, ToolResult)]
    return out


def unique_call_ids(messages: list[Message]) -> None:
    """Rename, in place, tool calls that reuse an id already used earlier in the conversation.

    Some clients number calls per turn (`call_0` every time); Claude and the Responses API
    refuse repeated ids. A result goes to the oldest unanswered call with its id, else to the
    latest call with that id.
    """
    seen: set[str] = set()
    unanswered: dict[str, deque[str]] = {}
    latest: dict[str, str] = {}
    for msg in messages:
        for part in msg.parts:
            if isinstance(part, ToolCall):
                new, n = part.id, 1
                while new in seen:
                    n += 1
                    new = f"{part.id}_{n}"
                seen.add(new)
                unanswered.setdefault(part.id, deque()).append(new)
                latest[part.id] = new
                part.id = new
            elif isinstance(part, ToolResult):
                queue = unanswered.get(part.id)
                if queue:
                    part.id = queue.popleft()
                elif part.id in latest:
                    part.id = latest[part.id]


def dedupe_results(messages: list[Message]) -> None:
    """Keep, in place, one result per call: the last one sent, where the first one stood.

    A client that retried a tool sends a second result for the same call (after unique_call_ids
    a repeated id means the same call); Claude and the Responses API refuse two results for
    one call, and Gemini would pair the spare with nothing.
    """
    last: dict[str, ToolResult] = {}
    results = 0
    for msg in messages:
        for part in msg.parts:
            if isinstance(part, ToolResult) and part.id:
                last[part.id] = part
                results += 1
    if results == len(last):
        return  # no id answered twice, the usual case: nothing to drop, no lists to rebuild
    placed: set[str] = set()
    emptied: list[Message] = []
    for msg in messages:
        kept: list[Part] = []
        for part in msg.parts:
            if isinstance(part, ToolResult) and part.id in last:
                if part.id in placed:
                    continue
                placed.add(part.id)
                part = last[part.id]
            kept.append(part)
        if msg.parts and not kept:
            emptied.append(msg)
        msg.parts = kept
    messages[:] = [m for m in messages if not any(m is e for e in emptied)]


def orphan_results_as_text(messages: list[Message]) -> None:
    """Turn, in place, tool results that answer no call of the latest assistant turn into text.

    Every upstream refuses a result without its call right before it (a client that trimmed
    its history sends those); as text, what the tool said still reaches the model.
    """
    open_calls: set[str] = set()
    last_role = ""
    for msg in messages:
        if msg.role == "system":
            continue
        if msg.role == "assistant":
            # consecutive assistant messages are one turn (Responses: one item per call)
            calls = {p.id for p in msg.parts if isinstance(p, ToolCall)}
            open_calls = open_calls | calls if last_role == "assistant" else calls
            last_role = msg.role
            continue
        last_role = msg.role
        for i, part in enumerate(msg.parts):
            if isinstance(part, ToolResult) and part.id not in open_calls:
                label = part.name or part.id
                msg.parts[i] = Text(f"Result of tool call {label}: {result_text(part)}")


def hoist_system(conv: Conversation) -> tuple[list[Text], list[Message]]:
    """All system text (top-level first, then system messages in order) and the other messages.

    For targets with a single system slot (Claude, Gemini).
    """
    system = list(conv.system)
    rest: list[Message] = []
    for msg in conv.messages:
        if msg.role == "system":
            system.extend(p for p in msg.parts if isinstance(p, Text))
        else:
            rest.append(msg)
    if not rest and any(t.text for t in system):
        # A conversation made only of instructions: Claude and Gemini need a user turn, so the
        # instructions become it (Go's Gemini translator does the same for a lone system message).
        return [], [Message("user", list(system))]
    return system, rest


def system_reminder(texts: list[str]) -> Message | None:
    """A Claude client's mid-conversation system message as the user turn other targets get.

    The Messages API has no system role inside `messages`; Claude Code sends one anyway. For
    other providers it becomes a user turn of its own, the text inside `<system-reminder>`
    tags as Claude Code itself writes reminders (CLIProxyAPI does the same); None when empty.
    """
    text = "\n".join(t for t in texts if t)
    if not text.strip():
        return None
    return Message("user", [Text(f"<system-reminder>\n{text}\n</system-reminder>")], True)


def call_names(messages: list[Message]) -> dict[str, str]:
    """Tool call id -> function name, over the whole conversation."""
    return {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCall) and p.id}


def result_text(result: ToolResult) -> str:
    """The text of a tool result, parts joined with blank lines."""
    return "\n\n".join(p.text for p in result.content if isinstance(p, Text))
