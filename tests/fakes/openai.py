"""OpenAI Chat Completions and Responses APIs: builders and `FakeOpenAI` (core.md §2.8).

Routes (with or without the `/v1` prefix, since compat base URLs usually end in `/v1`):
`POST /chat/completions` (JSON, or `chat.completion.chunk` SSE ending in `data: [DONE]`;
a final usage chunk when `stream_options.include_usage`), `GET /models`,
`POST /responses` (JSON, or SSE `response.created` ... `response.completed`).
Credential: `Authorization: Bearer`.
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

CREATED = 1700000000
_FINISH = {"end": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def _args(call) -> str:
    return json.dumps(call.args, separators=(",", ":"))


def _call_id(turn: Turn, i: int) -> str:
    return turn.tool_calls[i].id or f"call_fake_{i + 1:02d}"


def chat_usage(turn: Turn) -> dict:
    u = turn.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def chat_completion(turn: Turn, model: str, id: str | None = None) -> dict:
    """A non-stream `chat.completion` body (reasoning as `message.reasoning_content`)."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.full_text or None}
    if turn.full_reasoning:
        message["reasoning_content"] = turn.full_reasoning
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(turn, i),
                "type": "function",
                "function": {"name": c.name, "arguments": _args(c)},
            }
            for i, c in enumerate(turn.tool_calls)
        ]
    return {
        "id": id or turn.id or "chatcmpl-fake01",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH[turn.stop_kind],
            }
        ],
        "usage": chat_usage(turn),
    }


def chat_chunks(
    turn: Turn, model: str, include_usage: bool = False, id: str | None = None
) -> list[Event]:
    """The SSE events of a streamed chat completion, ending with `data: [DONE]`."""
    cid = id or turn.id or "chatcmpl-fake01"

    def chunk(delta: dict, finish: str | None = None) -> Event:
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return Event(body)

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"reasoning_content": d}) for d in deltas(turn.reasoning)]
    events += [chunk({"content": d}) for d in deltas(turn.text) if turn.full_text]
    for i, call in enumerate(turn.tool_calls):
        head = {
            "index": i,
            "id": _call_id(turn, i),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append(chunk({"tool_calls": [head]}))
        for piece in args_deltas(_args(call)):
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    events.append(chunk({}, _FINISH[turn.stop_kind]))
    if include_usage:
        last = chunk({})
        last.data["choices"] = []
        last.data["usage"] = chat_usage(turn)
        events.append(last)
    events.append(Event("[DONE]"))
    return events


def openai_error(status: int, message: str | None = None, type=None, code=None) -> dict:
    """An OpenAI error body: `{"error":{"message","type","param","code"}}`."""
    default_type, default_code = _ERROR_TYPES.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return {
        "error": {
            "message": message or f"fake error {status}",
            "type": type or default_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def openai_error_reply(status: int, message=None, type=None, code=None, retry_after=None):
    return Reply(status, json=openai_error(status, message, type, code), retry_after=retry_after)


# -- Responses API ------------------------------------------------------------------------


def responses_usage(turn: Turn) -> dict:
    u = turn.usage
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def response_items(turn: Turn) -> list[dict]:
    """The `output` items of a finished response: reasoning, message, function calls."""
    items: list[dict] = []
    if turn.full_reasoning:
        items.append(
            {
                "id": "rs_fake_01",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": turn.full_reasoning}],
                "encrypted_content": turn.signature,
            }
        )
    if turn.full_text:
        items.append(
            {
                "id": "msg_fake_01",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": turn.full_text}],
            }
        )
    for i, call in enumerate(turn.tool_calls):
        items.append(
            {
                "id": f"fc_fake_{i + 1:02d}",
                "type": "function_call",
                "status": "completed",
                "call_id": _call_id(turn, i),
                "name": call.name,
                "arguments": _args(call),
            }
        )
    return items


def response_object(
    turn: Turn, model: str, id: str | None = None, status: str | None = None, output=None
) -> dict:
    """A Responses API `response` object (the non-stream body)."""
    incomplete = turn.stop_kind == "max_tokens"
    status = status or ("incomplete" if incomplete else "completed")
    return {
        "id": id or turn.id or "resp_fake01",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": model,
        "output": response_items(turn) if output is None else output,
        "parallel_tool_calls": True,
        "usage": responses_usage(turn) if status != "in_progress" else None,
    }


def response_events(
    turn: Turn, model: str, id: str | None = None, empty_completed_output: bool = False
) -> list[Event]:
    """The SSE events of a streamed response, `response.created` to `response.completed`.

    With `empty_completed_output`, `response.completed` carries `output: []` as the Codex
    backend does (the items are only in the `response.output_item.done` events).
    """
    rid = id or turn.id or "resp_fake01"
    events: list[Event] = []

    def emit(kind: str, **fields) -> None:
        events.append(Event({"type": kind, "sequence_number": len(events), **fields}, kind))

    emit("response.created", response=response_object(turn, model, rid, "in_progress", []))
    emit("response.in_progress", response=response_object(turn, model, rid, "in_progress", []))
    for index, item in enumerate(response_items(turn)):
        iid = item["id"]
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            part = {"type": "summary_text", "text": ""}
            common = {"item_id": iid, "output_index": index, "summary_index": 0}
            emit("response.reasoning_summary_part.added", **common, part=part)
            for d in deltas(turn.reasoning):
                emit("response.reasoning_summary_text.delta", **common, delta=d)
            text = turn.full_reasoning
            emit("response.reasoning_summary_text.done", **common, text=text)
            emit("response.reasoning_summary_part.done", **common, part={**part, "text": text})
        elif item["type"] == "message":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = {"type": "output_text", "annotations": [], "text": ""}
            common = {"item_id": iid, "output_index": index, "content_index": 0}
            emit("response.content_part.added", **common, part=part)
            for d in deltas(turn.text):
                emit("response.output_text.delta", **common, delta=d)
            text = turn.full_text
            emit("response.output_text.done", **common, text=text)
            emit("response.content_part.done", **common, part={**part, "text": text})
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for d in args_deltas(item["arguments"]):
                emit(
                    "response.function_call_arguments.delta",
                    item_id=iid,
                    output_index=index,
                    delta=d,
                )
            emit(
                "response.function_call_arguments.done",
                item_id=iid,
                output_index=index,
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    final = response_object(turn, model, rid, output=[] if empty_completed_output else None)
    emit(
        "response.incomplete" if final["status"] == "incomplete" else "response.completed",
        response=final,
    )
    return events


# -- request reading ----------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return ""


def chat_ask(body: Any) -> Ask:
    """Read a chat completions request body."""
    body = body if isinstance(body, dict) else {}
    ask = Ask(model=str(body.get("model") or ""), stream=body.get("stream") is True)
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            ask.tools.append((fn["name"], fn.get("parameters") or {}))
    ask.forced_tool = _forced(body.get("tool_choice"))
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    if messages:
        ask.last_is_tool_result = messages[-1].get("role") in ("tool", "function")
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        ask.last_user_text = _text_of(users[-1].get("content"))
    effort = body.get("reasoning_effort")
    ask.wants_reasoning = bool(effort) and effort != "none"
    return ask


def _forced(choice: Any) -> str | None:
    if choice == "required":
        return "any"
    if isinstance(choice, dict):
        fn = choice.get("function") if isinstance(choice.get("function"), dict) else choice
        return fn.get("name")
    return None


def responses_ask(body: Any) -> Ask:
    """Read a Responses API request body (also what Codex receives)."""
    body = body if isinstance(body, dict) else {}
    ask = Ask(model=str(body.get("model") or ""), stream=body.get("stream") is True)
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and tool.get("name"):
            ask.tools.append((tool["name"], tool.get("parameters") or {}))
    ask.forced_tool = _forced(body.get("tool_choice"))
    items = body.get("input")
    if isinstance(items, str):
        ask.last_user_text = items
    elif isinstance(items, list):
        items = [i for i in items if isinstance(i, dict)]
        if items:
            ask.last_is_tool_result = items[-1].get("type") == "function_call_output"
        users = [i for i in items if i.get("role") == "user"]
        if users:
            ask.last_user_text = _text_of(users[-1].get("content"))
    reasoning = body.get("reasoning")
    ask.wants_reasoning = isinstance(reasoning, dict) and reasoning.get("effort") != "none"
    return ask


class FakeOpenAI(ModelFake):
    """A fake OpenAI (or OpenAI-compatible) API: chat completions, models, responses."""

    name = "fake-openai"
    default_models = ("gpt-4o-mini", "gpt-5.4", "fake-model")
    generation_path = re.compile(r"(?:/v1)?/(?:chat/completions|responses)")

    def install_builtins(self) -> None:
        self.builtin("POST", r"(?:/v1)?/chat/completions", self._chat)
        self.builtin("POST", r"(?:/v1)?/responses", self._responses)
        self.builtin("GET", r"(?:/v1)?/models", self._models)

    def credential(self, rec: RecordedRequest) -> str | None:
        return bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return openai_error_reply(401, "Incorrect API key provided.")

    def not_found(self, rec: RecordedRequest) -> Reply:
        return openai_error_reply(404, f"Invalid URL ({rec.method} {rec.path})", code=None)

    def error_reply(self, status, message=None, retry_after=None) -> Reply:
        return openai_error_reply(status, message, retry_after=retry_after)

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        if rec.path.endswith("/responses"):
            return responses_ask(rec.json)
        return chat_ask(rec.json)

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        n = len(self.requests)
        if rec.path.endswith("/responses"):
            rid = turn.id or f"resp_fake{n:02d}"
            if ask.stream:
                return Reply(sse=response_events(turn, ask.model, rid))
            return Reply(json=response_object(turn, ask.model, rid))
        cid = turn.id or f"chatcmpl-fake{n:02d}"
        if ask.stream:
            opts = (rec.json or {}).get("stream_options") or {}
            return Reply(sse=chat_chunks(turn, ask.model, bool(opts.get("include_usage")), cid))
        return Reply(json=chat_completion(turn, ask.model, cid))

    def _invalid(self, rec: RecordedRequest, field: str) -> Reply | None:
        if not isinstance(rec.json, dict):
            return openai_error_reply(400, "We could not parse the JSON body of your request.")
        for name in ("model", field):
            if not rec.json.get(name):
                return openai_error_reply(400, f"Missing required parameter: '{name}'.")
        return None

    def _chat(self, rec: RecordedRequest, m) -> Reply:
        return self._invalid(rec, "messages") or self.answer(rec)

    def _responses(self, rec: RecordedRequest, m) -> Reply:
        return self._invalid(rec, "input") or self.answer(rec)

    def _models(self, rec: RecordedRequest, m) -> Reply:
        data = [
            {"id": mid, "object": "model", "created": CREATED, "owned_by": self.name}
            for mid in self.models
        ]
        return Reply(json={"object": "list", "data": data})
