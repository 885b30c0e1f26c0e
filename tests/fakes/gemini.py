"""Gemini API (and Vertex): builders and `FakeGemini` (core.md §2.1, §2.4).

Routes: `POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens`,
`GET /v1beta/models`, `GET /v1beta/models/{model}`; the same actions under the Vertex
paths `/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...` and
`/v1/publishers/google/models/{model}:...` (and `v1beta1`, which Amp uses).
`streamGenerateContent?alt=sse` answers SSE with CRLF line ends like Google does; without
`alt=sse` it answers a streamed JSON array. Credential: `x-goog-api-key`, `?key=`, or
`Authorization: Bearer` (OAuth access tokens, Vertex service accounts).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.base import ModelFake
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Event, Reply
from tests.fakes.server import bearer
from tests.fakes.turn import Ask, Turn, deltas

_FINISH = {"end": "STOP", "max_tokens": "MAX_TOKENS", "tool_use": "STOP"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: one model-action path covering Gemini API, Vertex and Amp's v1beta1 publisher form
MODEL_ACTION = (
    r"(?:/v1beta1?|/v1)(?:/projects/[^/]+/locations/[^/]+)?(?:/publishers/google)?"
    r"/models/(?P<model>[^/:]+):(?P<action>generateContent|streamGenerateContent|countTokens)"
)


def gemini_usage(turn: Turn) -> dict:
    u = turn.usage
    out = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens,
        "totalTokenCount": u.input_tokens + u.output_tokens + u.reasoning_tokens,
    }
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cached_tokens:
        out["cachedContentTokenCount"] = u.cached_tokens
    return out


def _parts(turn: Turn, reasoning: list[str], text: list[str], calls: bool) -> list[dict]:
    parts: list[dict] = [{"text": r, "thought": True} for r in reasoning]
    parts += [{"text": t} for t in text]
    if calls:
        parts += [{"functionCall": {"name": c.name, "args": c.args}} for c in turn.tool_calls]
    return parts


def _sign(parts: list[dict], signature: str) -> None:
    """Gemini puts the thought signature on the first part after the thoughts."""
    for part in parts:
        if not part.get("thought"):
            part["thoughtSignature"] = signature
            return


def gemini_response(turn: Turn, model: str, id: str | None = None) -> dict:
    """A `GenerateContentResponse` for the whole turn."""
    reasoning = [turn.full_reasoning] if turn.full_reasoning else []
    parts = _parts(turn, reasoning, [turn.full_text] if turn.full_text else [], True)
    if reasoning:
        _sign(parts, turn.signature)
    return _envelope(parts, _FINISH[turn.stop_kind], gemini_usage(turn), model, id or turn.id)


def _envelope(parts, finish, usage, model, rid) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate]}
    if usage:
        out["usageMetadata"] = usage
    out["modelVersion"] = model
    out["responseId"] = rid or "fake-response-01"
    return out


def gemini_chunks(turn: Turn, model: str, id: str | None = None) -> list[dict]:
    """The stream chunks: one per thought/text delta, the calls whole, usage on the last."""
    chunks = []
    for r in deltas(turn.reasoning):
        chunks.append(_parts(turn, [r], [], False))
    signed = not turn.reasoning
    for t in deltas(turn.text) if turn.full_text else []:
        parts = _parts(turn, [], [t], False)
        if not signed:
            _sign(parts, turn.signature)
            signed = True
        chunks.append(parts)
    if turn.tool_calls:
        parts = _parts(turn, [], [], True)
        if not signed:
            _sign(parts, turn.signature)
        chunks.append(parts)
    if not chunks:
        chunks.append([{"text": ""}])
    out = []
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1
        out.append(
            _envelope(
                parts,
                _FINISH[turn.stop_kind] if last else None,
                gemini_usage(turn) if last else None,
                model,
                id or turn.id,
            )
        )
    return out


def gemini_events(turn: Turn, model: str, id: str | None = None) -> list[Event]:
    """`gemini_chunks` as data-only SSE events (for `alt=sse`)."""
    return [Event(c) for c in gemini_chunks(turn, model, id)]


def gemini_error(
    status: int, message: str | None = None, retry_delay: str | None = None, reason=None
) -> dict:
    """A Google API error body; `retry_delay` (e.g. "3.5s") adds a RetryInfo detail."""
    details: list[dict] = []
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        )
    if retry_delay:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    err: dict[str, Any] = {
        "code": status,
        "message": message or f"fake error {status}",
        "status": _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def gemini_error_reply(status: int, message=None, retry_delay=None, reason=None, retry_after=None):
    return Reply(
        status, json=gemini_error(status, message, retry_delay, reason), retry_after=retry_after
    )


def gemini_ask(body: Any, model: str = "") -> Ask:
    """Read a `generateContent` request body (the model comes from the URL)."""
    body = body if isinstance(body, dict) else {}
    ask = Ask(model=model or str(body.get("model") or ""))
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        decls = tool.get("functionDeclarations") or tool.get("function_declarations") or []
        for d in decls:
            if isinstance(d, dict) and d.get("name"):
                schema = d.get("parameters") or d.get("parametersJsonSchema") or {}
                ask.tools.append((d["name"], schema))
    cfg = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    if str(cfg.get("mode", "")).upper() == "ANY":
        allowed = cfg.get("allowedFunctionNames") or []
        ask.forced_tool = allowed[0] if len(allowed) == 1 else "any"
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    if contents:
        parts = contents[-1].get("parts") or []
        ask.last_is_tool_result = any(
            isinstance(p, dict) and "functionResponse" in p for p in parts
        )
    users = [c for c in contents if c.get("role", "user") == "user"]
    if users:
        ask.last_user_text = "".join(
            p.get("text", "") for p in users[-1].get("parts") or [] if isinstance(p, dict)
        )
    gen = body.get("generationConfig") or {}
    thinking = gen.get("thinkingConfig") or {}
    ask.wants_reasoning = bool(thinking.get("includeThoughts"))
    return ask


def gemini_model_entry(mid: str) -> dict:
    return {
        "name": f"models/{mid}",
        "version": "001",
        "displayName": mid,
        "description": f"{mid} (fake)",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }


def stream_alt(rec: RecordedRequest) -> str | None:
    return rec.arg("alt") or rec.arg("$alt")


class FakeGemini(ModelFake):
    """A fake `generativelanguage.googleapis.com` that also answers Vertex paths."""

    name = "fake-gemini"
    default_models = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview")
    generation_path = re.compile(MODEL_ACTION.replace("|countTokens", ""))

    def install_builtins(self) -> None:
        self.builtin("POST", MODEL_ACTION, self._action)
        self.builtin("GET", r"/v1beta/models", self._models)
        self.builtin("GET", r"/v1beta/models/(?P<model>[^/:]+)", self._model)

    def credential(self, rec: RecordedRequest) -> str | None:
        return rec.header("x-goog-api-key") or rec.arg("key") or bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return gemini_error_reply(
            401, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
        )

    def not_found(self, rec: RecordedRequest) -> Reply:
        return gemini_error_reply(404, f"Method not found: {rec.method} {rec.path}")

    def error_reply(self, status, message=None, retry_after=None) -> Reply:
        # Google signals the wait in a RetryInfo detail, not in a Retry-After header
        delay = f"{retry_after}s" if retry_after is not None and status == 429 else None
        return gemini_error_reply(status, message, retry_delay=delay)

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        ask = gemini_ask(rec.json, model or "")
        ask.stream = "streamGenerateContent" in rec.path
        return ask

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        rid = turn.id or f"fake-response-{len(self.requests):02d}"
        if not ask.stream:
            return Reply(json=gemini_response(turn, ask.model, rid))
        return gemini_stream_reply(gemini_chunks(turn, ask.model, rid), stream_alt(rec))

    def _action(self, rec: RecordedRequest, m) -> Reply:
        if not isinstance(rec.json, dict):
            return gemini_error_reply(400, "Invalid JSON payload received.")
        if m["action"] == "countTokens":
            return Reply(json={"totalTokens": max(1, len(rec.body) // 4)})
        if not rec.json.get("contents"):
            return gemini_error_reply(
                400, "* GenerateContentRequest.contents: contents is not specified"
            )
        return self.answer(rec, m["model"])

    def _models(self, rec: RecordedRequest, m) -> Reply:
        return Reply(json={"models": [gemini_model_entry(mid) for mid in self.models]})

    def _model(self, rec: RecordedRequest, m) -> Reply:
        if m["model"] not in self.models:
            return gemini_error_reply(404, f"models/{m['model']} is not found")
        return Reply(json=gemini_model_entry(m["model"]))


def gemini_stream_reply(chunks: list[Any], alt: str | None) -> Reply:
    """Stream chunks as Google does: CRLF SSE for `alt=sse`, else a streamed JSON array."""
    if alt == "sse":
        return Reply(sse=[Event(c) for c in chunks], sse_newline="\r\n")
    encoded = [json.dumps(c, ensure_ascii=False).encode("utf-8") for c in chunks]
    pieces = [b"[" + encoded[0]] + [b",\r\n" + e for e in encoded[1:]]
    pieces[-1] += b"]"
    return Reply(chunks=pieces, content_type="application/json; charset=UTF-8")
