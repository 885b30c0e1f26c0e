"""Realistic upstream streams for the response-side tests, and what each one means.

Each sample is one assistant turn, written the way the provider really streams it
(translators.md §4.5), together with its meaning in neutral terms: visible text, reasoning
text and signature, tool calls, finish reason and usage. The other test modules import them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEDecoder, SSEEvent

CLAUDE_SIG = "EqQBCkYIBxgCKkBsig+/=="
CODEX_SIG = "gAAAAABo-encrypted-reasoning"
GEMINI_SIG = "CiQB0e2Kb-thought-signature"


@dataclass
class Expected:
    text: str = ""
    thinking: str = ""
    signature: str = ""
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish: str = "stop"  # neutral: stop | tool_use | length
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class Sample:
    provider: Format
    scenario: str
    body: bytes
    expected: Expected
    upstream_model: str


def sse_named(events: list[dict[str, Any]]) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for e in events
    )


def sse_data(chunks: list[Any]) -> bytes:
    out = []
    for c in chunks:
        out.append(b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n\n")
    return b"".join(out)


def events_of(body: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


WEATHER = ("get_weather", {"location": "Paris", "unit": "celsius"})
TOOL_ARG_PIECES = ['{"location":', ' "Paris", "unit": "c', 'elsius"}']

# --- Claude ----------------------------------------------------------------------------------


def _claude_start(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }


def _claude_text_block(index: int, pieces: list[str]) -> list[dict[str, Any]]:
    return (
        [
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
        ]
        + [
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": p},
            }
            for p in pieces
        ]
        + [{"type": "content_block_stop", "index": index}]
    )


def _claude_end(reason: str, output: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": {"output_tokens": output},
        },
        {"type": "message_stop"},
    ]


CLAUDE_TOOL = (
    [
        _claude_start(
            {
                "input_tokens": 25,
                "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 10,
                "output_tokens": 1,
            }
        ),
        {"type": "ping"},
    ]
    + _claude_text_block(0, ["Let me ", "check the weather."])
    + [
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ]
    + [
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": p},
        }
        for p in TOOL_ARG_PIECES
    ]
    + [{"type": "content_block_stop", "index": 1}]
    + _claude_end("tool_use", 48)
)

CLAUDE_REASONING = (
    [
        _claude_start({"input_tokens": 12, "output_tokens": 1}),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "The user wants "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "a greeting."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": CLAUDE_SIG},
        },
        {"type": "content_block_stop", "index": 0},
    ]
    + _claude_text_block(1, ["Hello", " there! ✓"])
    + _claude_end("end_turn", 30)
)

CLAUDE_LENGTH = (
    [_claude_start({"input_tokens": 7, "output_tokens": 1})]
    + _claude_text_block(0, ["Once upon", " a"])
    + _claude_end("max_tokens", 3)
)

# --- OpenAI chat -----------------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any):
    chunk: dict[str, Any] = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "system_fingerprint": "fp_x",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    chunk.update(extra)
    return chunk


CHAT_TOOL = [
    _chunk({"role": "assistant", "content": "", "refusal": None}),
    _chunk({"content": "Let me "}),
    _chunk({"content": "check the weather."}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    *[
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
        for p in TOOL_ARG_PIECES
    ],
    _chunk({}, "tool_calls"),
    _chunk(
        None,
        usage={
            "prompt_tokens": 40,
            "completion_tokens": 48,
            "total_tokens": 88,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    ),
    b"[DONE]",
]

CHAT_REASONING = [
    _chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
    _chunk({"reasoning_content": "The user wants "}),
    _chunk({"reasoning_content": "a greeting."}),
    _chunk({"content": "Hello"}),
    _chunk({"content": " there! ✓"}),
    _chunk({}, "stop"),
    _chunk(
        None,
        usage={
            "prompt_tokens": 12,
            "completion_tokens": 30,
            "total_tokens": 42,
            "completion_tokens_details": {"reasoning_tokens": 8},
        },
    ),
    b"[DONE]",
]

CHAT_LENGTH = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Once upon"}),
    _chunk({"content": " a"}),
    _chunk({}, "length", usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
    b"[DONE]",
]

# --- OpenAI Responses / Codex ------------------------------------------------------------------

_RESP = {
    "id": "resp_68af4030592c81938ec0a5fbab4a3e9f",
    "object": "response",
    "created_at": 1756315696,
    "model": "gpt-5-codex",
}


def _responses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(e, sequence_number=n) for n, e in enumerate(events)]


def _resp_head() -> list[dict[str, Any]]:
    response = dict(_RESP, status="in_progress", output=[], usage=None)
    return [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
    ]


def _resp_message(index: int, item_id: str, pieces: list[str]) -> list[dict[str, Any]]:
    text = "".join(pieces)
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    common = {"item_id": item_id, "output_index": index, "content_index": 0}
    return (
        [
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "status": "in_progress",
                    "content": [],
                    "role": "assistant",
                },
            },
            {"type": "response.content_part.added", **common, "part": dict(part, text="")},
        ]
        + [
            {"type": "response.output_text.delta", **common, "delta": p, "logprobs": []}
            for p in pieces
        ]
        + [
            {"type": "response.output_text.done", **common, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **common, "part": part},
            {
                "type": "response.output_item.done",
                "output_index": index,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "status": "completed",
                    "content": [part],
                    "role": "assistant",
                },
            },
        ]
    )


def _resp_done(status: str, output: list[Any], usage: dict[str, Any], **extra: Any):
    name = "response.completed" if status == "completed" else "response.incomplete"
    response = dict(_RESP, status=status, output=output, usage=usage, **extra)
    return {"type": name, "response": response}


def _resp_usage(inp: int, cached: int, out: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


_CALL_ITEM = {
    "id": "fc_68af40337a2c8193a0d5a5dbd7c4b43c",
    "type": "function_call",
    "status": "completed",
    "arguments": "".join(TOOL_ARG_PIECES),
    "call_id": "call_ZlY3o6bQUR8Ke2Xbe8hYZ9kk",
    "name": "get_weather",
}

_RESP_TOOL_MESSAGE = _resp_message(0, "msg_68af4031d5e88193", ["Let me ", "check the weather."])

RESPONSES_TOOL = _responses(
    _resp_head()
    + _RESP_TOOL_MESSAGE
    + [
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": dict(_CALL_ITEM, status="in_progress", arguments=""),
        }
    ]
    + [
        {
            "type": "response.function_call_arguments.delta",
            "item_id": _CALL_ITEM["id"],
            "output_index": 1,
            "delta": p,
        }
        for p in TOOL_ARG_PIECES
    ]
    + [
        {
            "type": "response.function_call_arguments.done",
            "item_id": _CALL_ITEM["id"],
            "output_index": 1,
            "arguments": _CALL_ITEM["arguments"],
        },
        {"type": "response.output_item.done", "output_index": 1, "item": _CALL_ITEM},
        _resp_done(
            "completed",
            [_RESP_TOOL_MESSAGE[-1]["item"], _CALL_ITEM],
            _resp_usage(40, 10, 48, 0),
        ),
    ]
)

_RS = {"id": "rs_68af4030baa48193b0b43b4c2a176a1a", "type": "reasoning"}
_RS_COMMON = {"item_id": _RS["id"], "output_index": 0, "summary_index": 0}

RESPONSES_REASONING = _responses(
    _resp_head()
    + [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": dict(_RS, summary=[], encrypted_content=None),
        },
        {
            "type": "response.reasoning_summary_part.added",
            **_RS_COMMON,
            "part": {"type": "summary_text", "text": ""},
        },
        {"type": "response.reasoning_summary_text.delta", **_RS_COMMON, "delta": "The user wants "},
        {"type": "response.reasoning_summary_text.delta", **_RS_COMMON, "delta": "a greeting."},
        {
            "type": "response.reasoning_summary_text.done",
            **_RS_COMMON,
            "text": "The user wants a greeting.",
        },
        {
            "type": "response.reasoning_summary_part.done",
            **_RS_COMMON,
            "part": {"type": "summary_text", "text": "The user wants a greeting."},
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": dict(
                _RS,
                summary=[{"type": "summary_text", "text": "The user wants a greeting."}],
                encrypted_content=CODEX_SIG,
            ),
        },
    ]
    + _resp_message(1, "msg_68af4031d5e88194", ["Hello", " there! ✓"])
    # Codex leaves `output` empty here: the aggregator back-fills it (translators.md §1.1)
    + [_resp_done("completed", [], _resp_usage(12, 0, 30, 8))]
)

RESPONSES_LENGTH = _responses(
    _resp_head()
    + _resp_message(0, "msg_68af4031d5e88195", ["Once upon", " a"])
    + [
        _resp_done(
            "incomplete",
            [],
            _resp_usage(7, 0, 3, 0),
            incomplete_details={"reason": "max_output_tokens"},
        )
    ]
)

# --- Gemini ----------------------------------------------------------------------------------


def _gchunk(parts: list[dict[str, Any]], finish: str | None = None, usage=None):
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [cand]}
    if usage is not None:
        chunk["usageMetadata"] = usage
    chunk["modelVersion"] = "gemini-2.5-pro"
    chunk["responseId"] = "yC6vaOTzNKmbz7IPnvXe2QQ"
    return chunk


GEMINI_TOOL = [
    _gchunk([{"text": "Let me "}], usage={"promptTokenCount": 40, "totalTokenCount": 40}),
    _gchunk([{"text": "check the weather."}]),
    _gchunk(
        [
            {
                "functionCall": {"name": "get_weather", "args": WEATHER[1]},
                "thoughtSignature": GEMINI_SIG,
            }
        ],
        "STOP",
        usage={
            "promptTokenCount": 40,
            "candidatesTokenCount": 48,
            "totalTokenCount": 88,
            "cachedContentTokenCount": 10,
        },
    ),
]

GEMINI_REASONING = [
    _gchunk([{"text": "The user wants ", "thought": True}]),
    _gchunk([{"text": "a greeting.", "thought": True, "thoughtSignature": GEMINI_SIG}]),
    _gchunk([{"text": "Hello"}]),
    _gchunk(
        [{"text": " there! ✓"}],
        "STOP",
        usage={
            "promptTokenCount": 12,
            "candidatesTokenCount": 22,
            "thoughtsTokenCount": 8,
            "totalTokenCount": 42,
        },
    ),
]

GEMINI_LENGTH = [
    _gchunk([{"text": "Once upon"}]),
    _gchunk(
        [{"text": " a"}],
        "MAX_TOKENS",
        usage={"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
    ),
]

# --- the catalogue ---------------------------------------------------------------------------

_TOOL = Expected(
    text="Let me check the weather.",
    tools=[WEATHER],
    finish="tool_use",
    input_tokens=40,
    output_tokens=48,
    cached_tokens=10,
)
_REASONING = Expected(
    text="Hello there! ✓",
    thinking="The user wants a greeting.",
    finish="stop",
    input_tokens=12,
    output_tokens=30,
)
_LENGTH = Expected(text="Once upon a", finish="length", input_tokens=7, output_tokens=3)


def _with(expected: Expected, **changes: Any) -> Expected:
    return Expected(**{**expected.__dict__, **changes})


SAMPLES = [
    Sample(
        Format.CLAUDE,
        "tool",
        sse_named(CLAUDE_TOOL),
        _with(_TOOL, cache_creation_tokens=5),
        "claude-sonnet-4-5-20250929",
    ),
    Sample(
        Format.CLAUDE,
        "reasoning",
        sse_named(CLAUDE_REASONING),
        _with(_REASONING, signature=CLAUDE_SIG),
        "claude-sonnet-4-5-20250929",
    ),
    Sample(
        Format.CLAUDE, "length", sse_named(CLAUDE_LENGTH), _LENGTH, "claude-sonnet-4-5-20250929"
    ),
    Sample(Format.OPENAI_CHAT, "tool", sse_data(CHAT_TOOL), _TOOL, "gpt-4.1-2025-04-14"),
    Sample(
        Format.OPENAI_CHAT,
        "reasoning",
        sse_data(CHAT_REASONING),
        _with(_REASONING, reasoning_tokens=8),
        "gpt-4.1-2025-04-14",
    ),
    Sample(Format.OPENAI_CHAT, "length", sse_data(CHAT_LENGTH), _LENGTH, "gpt-4.1-2025-04-14"),
    Sample(Format.OPENAI_RESPONSES, "tool", sse_named(RESPONSES_TOOL), _TOOL, "gpt-5-codex"),
    Sample(
        Format.OPENAI_RESPONSES,
        "reasoning",
        sse_named(RESPONSES_REASONING),
        _with(_REASONING, signature=CODEX_SIG, reasoning_tokens=8),
        "gpt-5-codex",
    ),
    Sample(Format.OPENAI_RESPONSES, "length", sse_named(RESPONSES_LENGTH), _LENGTH, "gpt-5-codex"),
    Sample(Format.GEMINI, "tool", sse_data(GEMINI_TOOL), _TOOL, "gemini-2.5-pro"),
    Sample(
        Format.GEMINI,
        "reasoning",
        sse_data(GEMINI_REASONING),
        _with(_REASONING, signature=GEMINI_SIG, reasoning_tokens=8),
        "gemini-2.5-pro",
    ),
    Sample(Format.GEMINI, "length", sse_data(GEMINI_LENGTH), _LENGTH, "gemini-2.5-pro"),
]

SAMPLE_IDS = [f"{s.provider.value}-{s.scenario}" for s in SAMPLES]


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLE_IDS)
def test_every_sample_is_well_formed_sse_with_json_data(sample: Sample) -> None:
    events = events_of(sample.body)
    assert events
    for event in events:
        if event.data != b"[DONE]":
            assert isinstance(json.loads(event.data), dict)
    assert b"".join(e.raw for e in events) == sample.body
