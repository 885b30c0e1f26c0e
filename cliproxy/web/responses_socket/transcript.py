# -*- test-case-name: tests.websocket.test_transcript -*-
"""One Responses WebSocket session's conversation state, and the requests built from it.

A client on the WebSocket sends `response.create` (a whole Responses request, or, with
`previous_response_id`, only the items added since that response) and `response.append`
(more input for the last response). No credential cliproxy serves keeps conversation state
for it, so every turn goes upstream as a whole request: the items the last request sent,
what the model answered, then the new items. A `response.create` with `generate: false`
(the Codex CLI's warm-up) is answered here without an upstream call; its request becomes
the base the next turn builds on.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from cliproxy.formats.json_types import JSON, JSONObject

CREATE = "response.create"
APPEND = "response.append"

#: fields of a frame that are WebSocket control, never Responses request fields
_CONTROL = ("type", "generate", "previous_response_id")


class FrameRefused(Exception):
    """A frame the session answers with an `error` event (status 400) and then goes on."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Turn:
    """What one frame asks for: the Responses request to send (`stream: true`), or a
    warm-up answered locally."""

    body: JSONObject
    model: str
    warmup: bool


def _input_items(value: JSON) -> list[JSON]:
    if value is None:
        return []
    if isinstance(value, str):
        text = {"type": "input_text", "text": value}
        return [{"type": "message", "role": "user", "content": [text]}]
    if isinstance(value, list):
        return list(value)
    raise FrameRefused("'input' must be a string or a list of input items")


@dataclass
class Transcript:
    """The last request sent in this session and what the model answered to it."""

    last_request: JSONObject | None = None
    last_output: list[JSON] = field(default_factory=list)
    last_response_id: str = ""

    def turn_for(self, frame: JSON) -> Turn:
        """The request for one client frame (a parsed JSON text message).

        Raises:
            FrameRefused: an unknown type, a continuation with nothing to continue, a
                `previous_response_id` that is not this session's last response, or no model.
        """
        if not isinstance(frame, dict):
            raise FrameRefused("a WebSocket message must be a JSON object")
        kind = frame.get("type")
        if kind not in (CREATE, APPEND):
            raise FrameRefused(
                f"unsupported websocket request type: {kind!r}; send '{CREATE}' or '{APPEND}'"
            )
        body = {k: v for k, v in frame.items() if k not in _CONTROL}
        items = _input_items(frame.get("input"))
        previous = frame.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise FrameRefused("'previous_response_id' must be a string")
        if kind == APPEND or previous:
            body = self._continued(body, items, previous or None, kind)
        else:
            body["input"] = items
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            raise FrameRefused(f"'model' is required in the first {CREATE} of a session")
        body["stream"] = True
        return Turn(body, model.strip(), frame.get("generate") is False)

    def _continued(
        self, body: JSONObject, items: list[JSON], previous: str | None, kind: str
    ) -> JSONObject:
        last = self.last_request
        if last is None:
            if previous:
                raise FrameRefused(
                    f"previous response '{previous}' is unknown to this WebSocket session",
                    code="previous_response_not_found",
                )
            raise FrameRefused(f"{kind} was sent before any {CREATE}")
        if previous and previous != self.last_response_id:
            raise FrameRefused(
                f"previous response '{previous}' is not the last response of this "
                "WebSocket session; send the whole input without previous_response_id",
                code="previous_response_not_found",
            )
        history = last.get("input")
        merged = [*(history if isinstance(history, list) else []), *self.last_output, *items]
        # the new frame's fields win; what it leaves out (tools, instructions, ...) carries on
        return {**last, **body, "input": merged}

    def answered(self, body: JSONObject, response_id: str, output: list[JSON]) -> None:
        """`body` was sent and answered: the next continuation builds on it."""
        self.last_request = body
        self.last_output = output
        self.last_response_id = response_id


def warmup_events(model: str) -> tuple[str, list[JSONObject]]:
    """The response id and the two events that answer a `generate: false` warm-up."""
    rid = "resp_warmup_" + uuid.uuid4().hex
    now = int(time.time())
    base: JSONObject = {
        "id": rid,
        "object": "response",
        "created_at": now,
        "model": model,
        "background": False,
        "error": None,
        "output": [],
    }
    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": {**base, "status": "in_progress"},
    }
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    completed = {
        "type": "response.completed",
        "sequence_number": 1,
        "response": {**base, "status": "completed", "usage": usage},
    }
    return rid, [created, completed]
