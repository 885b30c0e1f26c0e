# -*- test-case-name: tests.formats.test_resp_aggregate -*-
"""Rebuild a provider's whole (non-stream) response from its own stream.

Needed where upstream streams even for non-stream clients (Codex always does). Each
aggregator builds the provider's native shape, so a same-format client loses nothing and a
cross-format client goes through `translate_response` as usual. Text arrives as many small
deltas: each is appended to a list and joined once in `result()`.
"""

from __future__ import annotations

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.responses_side import decode_chat, decode_claude, decode_gemini
from cliproxy.formats.responses_side.decode_responses import usage_from_responses
from cliproxy.formats.responses_side.ir import Usage, arguments_object, loads_object
from cliproxy.formats.responses_side.stream import INCOMPLETE_MESSAGE, INCOMPLETE_STATUS
from cliproxy.formats.sse import SSEEvent


class AggregateError(Exception):
    """The stream did not yield a response: upstream reported an error, or closed early."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Aggregator:
    """Feed every upstream event, then call `result()` once."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.skipped = 0
        self._error: AggregateError | None = None

    def feed(self, event: SSEEvent) -> None:
        if self._error is not None:
            return
        if event.data[:6] == b"[DONE]":
            self._done_marker()
            return
        obj = loads_object(event.data) if event.data else None
        if obj is None:
            self.skipped += 1
            return
        self._feed(obj, event.event)

    def _done_marker(self) -> None:
        pass

    def _feed(self, obj: JSONObject, name: str | None) -> None:
        raise NotImplementedError

    def result(self) -> JSONObject:
        """The whole response. Raises `AggregateError` if there is none to give."""
        if self._error is not None:
            raise self._error
        return self._result()

    def _result(self) -> JSONObject:
        raise NotImplementedError

    def _fail(self, status: int, message: str) -> None:
        self._error = AggregateError(status, message)


def _incomplete() -> AggregateError:
    return AggregateError(INCOMPLETE_STATUS, INCOMPLETE_MESSAGE)


class ClaudeAggregator(Aggregator):
    def __init__(self) -> None:
        super().__init__()
        self._message: JSONObject | None = None
        self._blocks: dict[int, JSONObject] = {}
        self._parts: dict[int, list[str]] = {}
        self._raw_usage: JSONObject = {}
        self._complete = False

    def _merge_usage(self, raw: JSON) -> None:
        if isinstance(raw, dict):
            self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
            self.usage.replace_with(decode_claude.usage_from_claude(self._raw_usage))

    def _feed(self, obj: JSONObject, name: str | None) -> None:
        kind = obj.get("type") or name
        index = obj.get("index")
        if kind == "message_start" and isinstance(obj.get("message"), dict):
            self._message = dict(obj["message"])
            self._merge_usage(self._message.get("usage"))
        elif kind == "content_block_start" and isinstance(obj.get("content_block"), dict):
            if isinstance(index, int):
                self._blocks[index] = dict(obj["content_block"])
                self._parts[index] = []
        elif kind == "content_block_delta" and index in self._blocks:
            self._delta(self._blocks[index], self._parts[index], obj.get("delta"))
        elif kind == "content_block_stop" and index in self._parts:
            self._close(index)
        elif kind == "message_delta":
            delta = obj.get("delta")
            if self._message is not None and isinstance(delta, dict):
                for key in ("stop_reason", "stop_sequence"):
                    if key in delta:
                        self._message[key] = delta[key]
                if delta.get("stop_reason"):
                    self._complete = True
            self._merge_usage(obj.get("usage"))
        elif kind == "message_stop":
            self._complete = True
        elif kind == "error":
            self._fail(*decode_claude.error_status(obj.get("error")))

    @staticmethod
    def _delta(block: JSONObject, parts: list[str], delta: JSON) -> None:
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            parts.append(delta["text"])
        elif kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            parts.append(delta["thinking"])
        elif kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            parts.append(delta["partial_json"])
        elif kind == "signature_delta" and isinstance(delta.get("signature"), str):
            block["signature"] = delta["signature"]
        elif kind == "citations_delta" and "citation" in delta:
            block.setdefault("citations", []).append(delta["citation"])

    def _close(self, index: int) -> None:
        block = self._blocks[index]
        parts = self._parts.pop(index)
        kind = block.get("type")
        if kind == "text":
            block["text"] = (block.get("text") or "") + "".join(parts)
        elif kind == "thinking":
            block["thinking"] = (block.get("thinking") or "") + "".join(parts)
        elif parts:  # tool_use, server_tool_use: the input came as JSON text
            block["input"] = arguments_object("".join(parts))

    def _result(self) -> JSONObject:
        if self._message is None or not self._complete:
            raise _incomplete()
        for index in list(self._parts):
            self._close(index)
        message = self._message
        message["content"] = [self._blocks[i] for i in sorted(self._blocks)]
        if self._raw_usage:
            message["usage"] = dict(self._raw_usage)
        return message


class _ChatChoice:
    __slots__ = ("content", "reasoning", "tools", "finish_reason", "role")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, JSONObject] = {}
        self.finish_reason: JSON = None
        self.role = "assistant"


class ChatAggregator(Aggregator):
    _KEEP = ("id", "created", "model", "system_fingerprint", "service_tier")

    def __init__(self) -> None:
        super().__init__()
        self._head: JSONObject = {}
        self._choices: dict[int, _ChatChoice] = {}
        self._usage: JSONObject | None = None
        self._complete = False

    def _done_marker(self) -> None:
        self._complete = True

    def _feed(self, obj: JSONObject, name: str | None) -> None:
        if "error" in obj and not obj.get("choices"):
            self._fail(*decode_chat.error_status(obj["error"]))
            return
        for key in self._KEEP:
            if key not in self._head and obj.get(key) is not None:
                self._head[key] = obj[key]
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
            self.usage.replace_with(decode_chat.usage_from_chat(self._usage))
        choices = obj.get("choices")
        for position, choice in enumerate(choices if isinstance(choices, list) else []):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", position)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChatChoice()
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(state, delta)
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
                self._complete = True

    @staticmethod
    def _delta(state: _ChatChoice, delta: JSONObject) -> None:
        if isinstance(delta.get("content"), str):
            state.content.append(delta["content"])
        thought = delta.get("reasoning_content")
        if thought is None:
            thought = delta.get("reasoning")
        if thought is not None:
            state.reasoning.append(decode_chat.reasoning_text(thought))
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(call, dict):
                continue
            index = call.get("index", position)
            tool = state.tools.get(index)
            if tool is None:
                tool = state.tools[index] = {"id": None, "name": None, "args": [], "extra": None}
            if call.get("id"):
                tool["id"] = call["id"]
            if call.get("extra_content") is not None:
                tool["extra"] = call["extra_content"]
            fn = call.get("function")
            if isinstance(fn, dict):
                if fn.get("name"):
                    tool["name"] = fn["name"]
                if isinstance(fn.get("arguments"), str):
                    tool["args"].append(fn["arguments"])

    def _result(self) -> JSONObject:
        if not self._complete:
            raise _incomplete()
        out: JSONObject = {
            "id": self._head.get("id", ""),
            "object": "chat.completion",
            "created": self._head.get("created", 0),
            "model": self._head.get("model", ""),
            "choices": [],
        }
        for index in sorted(self._choices):
            state = self._choices[index]
            message: JSONObject = {
                "role": state.role,
                "content": "".join(state.content) if state.content else None,
            }
            if state.reasoning:
                message["reasoning_content"] = "".join(state.reasoning)
            if state.tools:
                calls = []
                for tool_index in sorted(state.tools):
                    tool = state.tools[tool_index]
                    call: JSONObject = {
                        "id": tool["id"] or "",
                        "type": "function",
                        "function": {
                            "name": tool["name"] or "",
                            "arguments": "".join(tool["args"]),
                        },
                    }
                    if tool["extra"] is not None:
                        call["extra_content"] = tool["extra"]
                    calls.append(call)
                message["tool_calls"] = calls
            out["choices"].append(
                {
                    "index": index,
                    "message": message,
                    "finish_reason": state.finish_reason,
                    "logprobs": None,
                }
            )
        if self._usage is not None:
            out["usage"] = self._usage
        for key in ("system_fingerprint", "service_tier"):
            if key in self._head:
                out[key] = self._head[key]
        return out


class ResponsesAggregator(Aggregator):
    """The `response` of `response.completed`, its `output` back-filled from
    `response.output_item.done` events when upstream left it empty (translators.md §1.1)."""

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[int, JSONObject] = {}
        self._response: JSONObject | None = None

    def _feed(self, obj: JSONObject, name: str | None) -> None:
        kind = obj.get("type") or name
        if kind == "response.output_item.done":
            index = obj.get("output_index")
            if isinstance(index, int) and isinstance(obj.get("item"), dict):
                self._items[index] = obj["item"]
        elif kind in ("response.completed", "response.incomplete"):
            if isinstance(obj.get("response"), dict):
                self._response = obj["response"]
                usage = self._response.get("usage")
                if isinstance(usage, dict):
                    self.usage.replace_with(usage_from_responses(usage))
        elif kind == "response.failed":
            response = obj.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            self._fail(*decode_chat.error_status(error))
        elif kind == "error":
            error = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            self._fail(*decode_chat.error_status(error))

    def _result(self) -> JSONObject:
        if self._response is None:
            raise _incomplete()
        response = self._response
        if not response.get("output") and self._items:
            response["output"] = [self._items[i] for i in sorted(self._items)]
        return response


class GeminiAggregator(Aggregator):
    """Concatenates candidate 0's parts, merging neighbouring texts of the same kind."""

    def __init__(self) -> None:
        super().__init__()
        self._head: JSONObject = {}
        self._parts: list[JSONObject] = []
        self._texts: list[list[str]] = []  # pending text pieces, parallel to _parts
        self._candidate: JSONObject = {}
        self._complete = False

    def _feed(self, obj: JSONObject, name: str | None) -> None:
        obj = decode_gemini.unwrap(obj)
        if isinstance(obj.get("error"), dict):
            self._fail(*decode_gemini.error_status(obj["error"]))
            return
        for key in ("usageMetadata", "modelVersion", "responseId", "promptFeedback", "createTime"):
            if key in obj:
                self._head[key] = obj[key]
        if isinstance(obj.get("usageMetadata"), dict):
            self.usage.replace_with(decode_gemini.usage_from_gemini(obj["usageMetadata"]))
        cand = decode_gemini.first_candidate(obj)
        if cand is None:
            if decode_gemini.blocked(obj):
                self._complete = True
            return
        for key, value in cand.items():
            if key != "content":
                self._candidate[key] = value
        for part in decode_gemini.candidate_parts(cand):
            if isinstance(part, dict):
                self._add(part)
        if cand.get("finishReason"):
            self._complete = True

    def _add(self, part: JSONObject) -> None:
        text = part.get("text")
        if isinstance(text, str) and self._parts:
            last = self._parts[-1]
            mergeable = set(part) <= {"text", "thought", "thoughtSignature"}
            if (
                mergeable
                and isinstance(last.get("text"), str)
                and bool(last.get("thought")) == bool(part.get("thought"))
                and not (last.get("thoughtSignature") and part.get("thoughtSignature"))
            ):
                self._texts[-1].append(text)
                if part.get("thoughtSignature"):
                    last["thoughtSignature"] = part["thoughtSignature"]
                return
        self._parts.append(dict(part))
        self._texts.append([])

    def _result(self) -> JSONObject:
        if not self._complete:
            raise _incomplete()
        parts = []
        for part, more in zip(self._parts, self._texts, strict=True):
            if more:
                part["text"] = part["text"] + "".join(more)
            parts.append(part)
        candidate = {"content": {"role": "model", "parts": parts}, **self._candidate}
        candidate.setdefault("index", 0)
        out: JSONObject = {"candidates": [candidate]}
        out.update(self._head)
        return out


_AGGREGATORS = {
    Format.CLAUDE: ClaudeAggregator,
    Format.OPENAI_CHAT: ChatAggregator,
    Format.OPENAI_RESPONSES: ResponsesAggregator,
    Format.GEMINI: GeminiAggregator,
}


def aggregate_stream(provider: Format) -> Aggregator:
    """An aggregator that builds `provider`'s non-stream response from its stream."""
    return _AGGREGATORS[Format(provider)]()
