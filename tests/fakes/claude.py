"""Anthropic Messages API: builders and `FakeClaude` (core.md §2.6-2.7).

Routes: `POST /v1/messages` (JSON, or SSE when `"stream": true`; `?beta=true` accepted),
`POST /v1/messages/count_tokens`, `GET /v1/models`. Credential: `x-api-key` or
`Authorization: Bearer` (OAuth tokens and non-Anthropic base URLs).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.base import ModelFake
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Event, Reply
from tests.fakes.server import bearer
from tests.fakes.turn import Ask, Turn, args_deltas, deltas

_STOP = {"end": "end_turn", "max_tokens": "max_tokens", "tool_use": "tool_use"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


#: what the real API needs to take a subscription (OAuth) token, and what it says otherwise
OAUTH_TOKEN_PREFIX = "sk-ant-oat"
OAUTH_BETA = "oauth-2025-04-20"
CLAUDE_CODE_SYSTEM = "You are Claude Code, Anthropic's official CLI for Claude."
#: the identity lines Claude Code itself sends (checked with Claude Code 2.1.197)
CLAUDE_CODE_IDENTITIES = (
    CLAUDE_CODE_SYSTEM[:-1],
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
)
CLAUDE_CODE_ONLY = (
    "This credential is only authorized for use with Claude Code and cannot be used for "
    "other API requests."
)


def _tool_id(turn: Turn, i: int) -> str:
    return turn.tool_calls[i].id or f"toolu_fake_{i + 1:02d}"


def _usage(turn: Turn, output: int) -> dict:
    u = turn.usage
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": output,
    }


def claude_message(turn: Turn, model: str, id: str | None = None) -> dict:
    """A non-stream Messages API response body."""
    content: list[dict] = []
    if turn.full_reasoning:
        content.append(
            {"type": "thinking", "thinking": turn.full_reasoning, "signature": turn.signature}
        )
    if turn.full_text:
        content.append({"type": "text", "text": turn.full_text})
    for i, call in enumerate(turn.tool_calls):
        content.append(
            {"type": "tool_use", "id": _tool_id(turn, i), "name": call.name, "input": call.args}
        )
    return {
        "id": id or turn.id or "msg_fake_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP[turn.stop_kind],
        "stop_sequence": None,
        "usage": _usage(turn, turn.usage.output_tokens),
    }


def claude_events(turn: Turn, model: str, id: str | None = None) -> list[Event]:
    """The SSE events of a streamed Messages API response, `message_start` to `message_stop`."""
    start = claude_message(Turn(usage=turn.usage), model, id or turn.id)
    start.update(content=[], stop_reason=None, usage=_usage(turn, 1))
    events = [
        Event({"type": "message_start", "message": start}, "message_start"),
        Event({"type": "ping"}, "ping"),
    ]
    index = 0

    def block(start_block: dict, delta_items: list[dict]) -> None:
        nonlocal index
        events.append(
            Event(
                {"type": "content_block_start", "index": index, "content_block": start_block},
                "content_block_start",
            )
        )
        for delta in delta_items:
            events.append(
                Event(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
            )
        events.append(Event({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1

    if turn.reasoning:
        block(
            {"type": "thinking", "thinking": ""},
            [{"type": "thinking_delta", "thinking": d} for d in deltas(turn.reasoning)]
            + [{"type": "signature_delta", "signature": turn.signature}],
        )
    if turn.full_text:
        block(
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": d} for d in deltas(turn.text)],
        )
    for i, call in enumerate(turn.tool_calls):
        args = json.dumps(call.args, separators=(",", ":"))
        block(
            {"type": "tool_use", "id": _tool_id(turn, i), "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in ["", *args_deltas(args)]],
        )
    events.append(
        Event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _STOP[turn.stop_kind], "stop_sequence": None},
                "usage": {"output_tokens": turn.usage.output_tokens},
            },
            "message_delta",
        )
    )
    events.append(Event({"type": "message_stop"}, "message_stop"))
    return events


def claude_error(status: int, message: str | None = None, type: str | None = None) -> dict:
    """An Anthropic error body: `{"type":"error","error":{"type","message"}}`."""
    kind = (
        type
        or _ERROR_TYPES.get(status)
        or ("api_error" if status >= 500 else "invalid_request_error")
    )
    return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}


def claude_error_reply(status: int, message: str | None = None, type=None, retry_after=None):
    return Reply(status, json=claude_error(status, message, type), retry_after=retry_after)


def claude_error_event(status: int, message: str | None = None, type=None) -> Event:
    """A mid-stream `event: error` (e.g. overloaded_error after some deltas)."""
    return Event(claude_error(status, message, type), "error")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def claude_ask(body: Any) -> Ask:
    """Read a Messages API request body."""
    body = body if isinstance(body, dict) else {}
    ask = Ask(model=str(body.get("model") or ""), stream=body.get("stream") is True)
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name"):
            ask.tools.append((tool["name"], tool.get("input_schema") or {}))
    choice = body.get("tool_choice") or {}
    if isinstance(choice, dict):
        if choice.get("type") == "any":
            ask.forced_tool = "any"
        elif choice.get("type") == "tool":
            ask.forced_tool = choice.get("name")
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    if messages:
        last = messages[-1]
        content = last.get("content")
        ask.last_is_tool_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        ask.last_user_text = _text_of(users[-1].get("content"))
    thinking = body.get("thinking")
    ask.wants_reasoning = isinstance(thinking, dict) and thinking.get("type") in (
        "enabled",
        "adaptive",
    )
    return ask


class FakeClaude(ModelFake):
    """A fake `api.anthropic.com`.

    Attributes:
        strict: reject requests the real API rejects (no model, no messages, no max_tokens).
        oauth_rules: a subscription token (`sk-ant-oat...` as a bearer) is taken as the real
            API takes it: only with the `oauth-2025-04-20` beta (else 401) and only for
            Claude Code, told by its identity line among the first system blocks (else 400),
            with the real error bodies.
    """

    name = "fake-claude"
    default_models = ("claude-sonnet-4-5-20250929", "claude-opus-4-7", "claude-haiku-4-5-20251001")
    generation_path = re.compile(r"/v1/messages")

    def __init__(self, keys=None, clock=None, reactor=None, models=None) -> None:
        self.strict = True
        self.oauth_rules = True
        super().__init__(keys=keys, clock=clock, reactor=reactor, models=models)

    def install_builtins(self) -> None:
        self.builtin("POST", r"(?:/v1)?/messages", self._messages)
        self.builtin("POST", r"(?:/v1)?/messages/count_tokens", self._count_tokens)
        self.builtin("GET", r"(?:/v1)?/models", self._models)

    def credential(self, rec: RecordedRequest) -> str | None:
        return rec.header("x-api-key") or bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return claude_error_reply(401, "invalid x-api-key")

    def not_found(self, rec: RecordedRequest) -> Reply:
        return claude_error_reply(404, f"Not found: {rec.method} {rec.path}")

    def error_reply(self, status, message=None, retry_after=None) -> Reply:
        return claude_error_reply(status, message, retry_after=retry_after)

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        return claude_ask(rec.json)

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        msg_id = turn.id or f"msg_fake_{len(self.requests):02d}"
        if ask.stream:
            return Reply(sse=claude_events(turn, ask.model, msg_id))
        return Reply(json=claude_message(turn, ask.model, msg_id))

    def _invalid(self, rec: RecordedRequest) -> Reply | None:
        body = rec.json
        if not isinstance(body, dict):
            return claude_error_reply(400, "request body is not a JSON object")
        if not self.strict:
            return None
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                return claude_error_reply(400, f"{name}: Field required")
        if not body["messages"]:
            return claude_error_reply(400, "messages: at least one message is required")
        return None

    def _oauth_refusal(self, rec: RecordedRequest) -> Reply | None:
        token = bearer(rec) or ""
        if not self.oauth_rules or not token.startswith(OAUTH_TOKEN_PREFIX):
            return None
        betas = [b.strip() for b in (rec.header("anthropic-beta") or "").split(",")]
        if OAUTH_BETA not in betas:
            return claude_error_reply(401, "OAuth authentication is currently not supported.")
        system = rec.json.get("system") if isinstance(rec.json, dict) else None
        blocks = system if isinstance(system, list) else [{"text": system}]
        # Claude Code opens with a billing line, then its identity (print mode: the Agent SDK's)
        texts = [b.get("text") for b in blocks[:3] if isinstance(b, dict)]
        if not any(isinstance(t, str) and t.startswith(CLAUDE_CODE_IDENTITIES) for t in texts):
            return claude_error_reply(400, CLAUDE_CODE_ONLY)
        return None

    def _messages(self, rec: RecordedRequest, m) -> Reply:
        return self._invalid(rec) or self._oauth_refusal(rec) or self.answer(rec)

    def _count_tokens(self, rec: RecordedRequest, m) -> Reply:
        if not isinstance(rec.json, dict) or "messages" not in rec.json:
            return claude_error_reply(400, "messages: Field required")
        return Reply(json={"input_tokens": max(1, len(rec.body) // 4)})

    def _models(self, rec: RecordedRequest, m) -> Reply:
        data = [
            {
                "type": "model",
                "id": mid,
                "display_name": mid,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for mid in self.models
        ]
        return Reply(
            json={
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
