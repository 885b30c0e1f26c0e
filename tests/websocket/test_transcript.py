"""The session transcript: which Responses request each WebSocket frame becomes."""

from __future__ import annotations

import pytest

from cliproxy.web.responses_socket.transcript import FrameRefused, Transcript, warmup_events


def msg(role: str, text: str) -> dict:
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def test_a_string_input_becomes_one_user_message():
    turn = Transcript().turn_for({"type": "response.create", "model": "m", "input": "hi"})
    assert turn.body["input"] == [msg("user", "hi")]
    assert turn.body["stream"] is True and turn.model == "m" and not turn.warmup


def test_a_continuation_keeps_the_fields_the_frame_leaves_out():
    t = Transcript()
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    first = t.turn_for(
        {"type": "response.create", "model": "m", "tools": tools, "input": [msg("user", "a")]}
    )
    t.answered(first.body, "resp_1", [msg("assistant", "b")])
    nxt = t.turn_for({"type": "response.append", "input": [msg("user", "c")]})
    assert nxt.body["tools"] == tools and nxt.model == "m"
    assert nxt.body["input"] == [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    assert "type" not in nxt.body and "previous_response_id" not in nxt.body


def test_a_fresh_create_replaces_the_transcript():
    t = Transcript()
    first = t.turn_for({"type": "response.create", "model": "m", "input": [msg("user", "a")]})
    t.answered(first.body, "resp_1", [msg("assistant", "b")])
    whole = [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    again = t.turn_for({"type": "response.create", "model": "m", "input": whole})
    assert again.body["input"] == whole


def test_a_stale_previous_response_id_is_refused_with_its_code():
    t = Transcript()
    first = t.turn_for({"type": "response.create", "model": "m", "input": []})
    t.answered(first.body, "resp_1", [])
    with pytest.raises(FrameRefused) as refused:
        t.turn_for({"type": "response.create", "previous_response_id": "resp_0", "input": []})
    assert refused.value.code == "previous_response_not_found"


@pytest.mark.parametrize("value", [5, {"a": 1}])
def test_input_of_another_type_is_refused(value):
    with pytest.raises(FrameRefused, match="'input' must be"):
        Transcript().turn_for({"type": "response.create", "model": "m", "input": value})


def test_a_warmup_answers_with_created_and_completed_of_one_id():
    rid, events = warmup_events("m")
    assert [e["type"] for e in events] == ["response.created", "response.completed"]
    assert {e["response"]["id"] for e in events} == {rid}
    assert events[1]["response"]["status"] == "completed"
