"""Legacy /v1/completions: served as a one-message chat, answered as text_completion objects."""

from __future__ import annotations

import json

from cliproxy.formats import Format
from cliproxy.formats.completions import (
    CompletionsStream,
    chat_to_completion,
    completion_to_chat_request,
)
from cliproxy.formats.responses_side import stream_translator
from cliproxy.formats.sse import SSEDecoder


def test_a_prompt_becomes_one_user_message_and_known_options_pass_through():
    chat = completion_to_chat_request(
        {"model": "m", "prompt": ["a", 1, "b"], "max_tokens": 5, "echo": True}
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "a\nb"}],
        "max_tokens": 5,
    }


def test_a_missing_prompt_asks_for_a_completion():
    chat = completion_to_chat_request({"model": "m"})
    assert chat["messages"] == [{"role": "user", "content": "Complete this:"}]


def test_a_chat_answer_becomes_a_text_completion_with_its_usage():
    chat = {
        "id": "c1",
        "created": 3,
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"total_tokens": 2},
    }
    assert chat_to_completion(chat) == {
        "id": "c1",
        "object": "text_completion",
        "created": 3,
        "model": "m",
        "choices": [{"text": "hi", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"total_tokens": 2},
    }


def test_a_body_without_choices_is_returned_as_it_is():
    error = {"error": {"message": "no"}}
    assert chat_to_completion(error) is error


def test_stream_chunks_come_out_as_text_completion_chunks_and_done_is_kept():
    inner = stream_translator(Format.OPENAI_CHAT, Format.OPENAI_CHAT, model="m")
    stream = CompletionsStream(inner)
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "he"}, "finish_reason": None}],
    }
    wire = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    out: list[bytes] = []
    for event in SSEDecoder().feed(wire):
        out += stream.feed(event)
    out += stream.finish()
    assert json.loads(out[0][len(b"data: ") :]) == {
        "id": "c1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"text": "he", "index": 0, "logprobs": None, "finish_reason": None}],
    }
    assert out[1:] == [b"data: [DONE]\n\n"]
    assert stream.done
