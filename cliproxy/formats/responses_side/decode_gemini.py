# -*- test-case-name: tests.formats.test_resp_stream -*-
"""Gemini GenerateContentResponse (stream chunks and whole responses) into the neutral form.

Gemini streams have no terminal marker: the chunk carrying `finishReason` is the last one.
Gemini sends whole function calls; each becomes tool start + one args delta + tool end.
"""

from __future__ import annotations

from cliproxy.formats.json_types import JSON, JSONArray, JSONObject
from cliproxy.formats.responses_side.ir import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    Decoder,
    Encoder,
    Message,
    ToolCallBlock,
    Usage,
    as_int,
    dumps_str,
    loads_object,
    new_nonce,
    opt_str,
)
from cliproxy.formats.sse import SSEEvent

_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
}

_ERROR_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def finish_reason(value: JSON) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if value == "MAX_TOKENS":
        return LENGTH
    if value in _FILTERED:
        return CONTENT_FILTER
    return STOP


def usage_from_gemini(raw: JSONObject) -> Usage:
    thoughts = as_int(raw.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=as_int(raw.get("promptTokenCount")),
        # OpenAI's meaning: output counts reasoning too (Gemini reports them apart)
        output_tokens=as_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=as_int(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        seen=True,
    )


def error_status(error: JSON) -> tuple[int, str]:
    if not isinstance(error, dict):
        return 500, "upstream error"
    message = error.get("message")
    message = message if isinstance(message, str) and message else "upstream error"
    code = error.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return code, message
    status = error.get("status")
    return (_ERROR_STATUS.get(status, 500) if isinstance(status, str) else 500), message


def unwrap(obj: JSONObject) -> JSONObject:
    """Gemini CLI and Vertex wrap each response as `{"response": {...}}`."""
    inner = obj.get("response")
    if isinstance(inner, dict) and "candidates" not in obj:
        return inner
    return obj


def first_candidate(obj: JSONObject) -> JSONObject | None:
    candidates = obj.get("candidates")
    if not isinstance(candidates, list):
        return None
    for position, cand in enumerate(candidates):
        if isinstance(cand, dict) and cand.get("index", position) in (0, None):
            return cand
    return None


def candidate_parts(cand: JSONObject) -> JSONArray:
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def blocked(obj: JSONObject) -> bool:
    feedback = obj.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


class GeminiDecoder(Decoder):
    """`streamGenerateContent?alt=sse`: each event's data is one GenerateContentResponse."""

    def __init__(self, sink: Encoder, *, nonce: str) -> None:
        super().__init__(sink, nonce=nonce)
        self._begun = False
        self._calls = 0
        self._in_thought = False

    def feed(self, event: SSEEvent) -> None:
        data = event.data
        if data[:6] == b"[DONE]":
            return
        obj = loads_object(data) if data else None
        if obj is None:
            self.skipped += 1
            return
        obj = unwrap(obj)
        sink = self.sink
        if isinstance(obj.get("error"), dict):
            status, message = error_status(obj["error"])
            sink.error(status, message)
            return
        usage = obj.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage.replace_with(usage_from_gemini(usage))
            sink.set_usage(self.usage)
        if not self._begun:
            self._begun = True
            sink.start(opt_str(obj.get("responseId")), opt_str(obj.get("modelVersion")))
        cand = first_candidate(obj)
        if cand is None:
            if blocked(obj):
                self.finished = True
                sink.finish(CONTENT_FILTER)
                sink.stop()
            return
        for part in candidate_parts(cand):
            if isinstance(part, dict):
                self._part(part)
        reason = finish_reason(cand.get("finishReason"))
        if reason is not None:
            self.finished = True
            sink.finish(reason)
            sink.stop()

    def _part(self, part: JSONObject) -> None:
        sink = self.sink
        signature = part.get("thoughtSignature")
        if not isinstance(signature, str):
            signature = None
        call = part.get("functionCall")
        if isinstance(call, dict):
            self._in_thought = False
            name = opt_str(call.get("name"))
            if not name:
                return  # a call without a name cannot be answered: not carried
            self._calls += 1
            key = self._calls
            call_id = opt_str(call.get("id")) or f"{name}-{self.nonce}{self._calls}"
            args = call.get("args")
            sink.tool_start(key, call_id, name, signature)
            sink.tool_args(key, dumps_str(args if args is not None else {}))
            sink.tool_end(key)
            return
        text = part.get("text")
        if isinstance(text, str):
            if part.get("thought") is True:
                self._in_thought = True
                if text:
                    sink.thinking(text)
                if signature:
                    sink.signature(signature)
            elif text:
                self._in_thought = False
                sink.text(text)
            return
        if signature and self._in_thought:
            sink.signature(signature)
        # inlineData, executableCode, codeExecutionResult …: not carried


def message_from_gemini(body: JSONObject, *, nonce: str | None = None) -> Message:
    """A whole GenerateContentResponse → `Message` (candidate 0)."""
    body = unwrap(body)
    msg = Message(
        id=opt_str(body.get("responseId")) or "", model=opt_str(body.get("modelVersion")) or ""
    )
    cand = first_candidate(body)
    nonce = nonce or new_nonce()
    calls = 0
    in_thought = False
    for part in candidate_parts(cand) if cand else []:
        if not isinstance(part, dict):
            continue
        signature = opt_str(part.get("thoughtSignature")) or ""
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls += 1
            in_thought = False
            name = opt_str(call.get("name")) or ""
            args = call.get("args")
            msg.blocks.append(
                ToolCallBlock(
                    id=opt_str(call.get("id")) or f"{name}-{nonce}{calls}",
                    name=name,
                    arguments=dumps_str(args if args is not None else {}),
                    signature=signature,
                )
            )
        elif isinstance(part.get("text"), str):
            if part.get("thought") is True:
                in_thought = True
                msg.add_thinking(part["text"], signature)
            else:
                in_thought = False
                msg.add_text(part["text"])
        elif signature and in_thought:
            msg.add_thinking("", signature)
    if cand is not None:
        msg.finish = finish_reason(cand.get("finishReason"))
    elif blocked(body):
        msg.finish = CONTENT_FILTER
    if isinstance(body.get("usageMetadata"), dict):
        msg.usage = usage_from_gemini(body["usageMetadata"])
    return msg
