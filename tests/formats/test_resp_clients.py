"""Strict reference clients: read what a translator wrote, as each client API would.

Each reader checks the protocol rules its client relies on (framing, one terminal event and
nothing after it, block and output indexes, sequence numbers, ids that agree) and returns
what the user would see. The tests at the bottom run them over the upstream samples, which
are valid streams of their own format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from cliproxy.formats import Format
from tests.formats.test_resp_samples import SAMPLE_IDS, SAMPLES, Expected, Sample, events_of


@dataclass
class Seen:
    text: str = ""
    thinking: str = ""
    signature: str = ""
    tools: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, args)
    finish: Any = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    model: str | None = None

    def tool_calls(self) -> list[tuple[str, Any]]:
        return [(name, args) for _, name, args in self.tools]


def _json_args(text: str) -> Any:
    """Arguments as the client would parse them; text that is not JSON stays text."""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


# --- OpenAI chat -----------------------------------------------------------------------------


def read_chat(body: bytes) -> Seen:
    events = events_of(body)
    seen = Seen()
    assert events, "empty stream"
    for event in events:
        assert event.event is None, "chat streams carry no event names"
    datas = [e.data for e in events]
    if datas[-1] != b"[DONE]":
        last = json.loads(datas[-1])
        assert "error" in last, "a chat stream ends with [DONE] or an error chunk"
        assert b"[DONE]" not in datas
        seen.error = last["error"]
        datas = datas[:-1]
    else:
        assert datas.count(b"[DONE]") == 1
        datas = datas[:-1]
    chunks = [json.loads(d) for d in datas]
    ids = {c["id"] for c in chunks}
    assert len(ids) <= 1, ids
    tools: dict[int, dict[str, Any]] = {}
    texts, thoughts = [], []
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        seen.model = chunk["model"]
        if chunk.get("usage"):
            seen.usage = chunk["usage"]
        for choice in chunk["choices"]:
            assert choice["index"] == 0
            delta = choice["delta"]
            if choice.get("finish_reason") is not None:
                assert seen.finish is None, "two finish reasons"
                seen.finish = choice["finish_reason"]
            else:
                assert seen.finish is None, "a delta after the finish chunk"
            if delta.get("content"):
                texts.append(delta["content"])
            if delta.get("reasoning_content"):
                thoughts.append(delta["reasoning_content"])
            for call in delta.get("tool_calls") or []:
                index = call["index"]
                if index not in tools:
                    assert index == len(tools), "tool indexes count from 0"
                    assert call["id"] and call["function"]["name"], "the first delta names it"
                    tools[index] = {"id": call["id"], "name": call["function"]["name"], "args": []}
                tools[index]["args"].append(call["function"].get("arguments") or "")
    seen.text, seen.thinking = "".join(texts), "".join(thoughts)
    seen.tools = [
        (t["id"], t["name"], _json_args("".join(t["args"]))) for _, t in sorted(tools.items())
    ]
    if seen.error is None:
        assert seen.finish is not None
    return seen


# --- Claude ----------------------------------------------------------------------------------

_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_DELTA_FOR = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


def read_claude(body: bytes) -> Seen:
    events = events_of(body)
    seen = Seen()
    assert events[0].event in ("message_start", "error")
    blocks: list[dict[str, Any]] = []
    open_index = None
    stopped = False
    delta_seen = False
    for n, event in enumerate(events):
        data = json.loads(event.data)
        assert not stopped, "nothing may follow message_stop or error"
        assert data["type"] == event.event
        kind = event.event
        if kind == "error":
            seen.error = data["error"]
            stopped = True
        elif kind == "message_start":
            assert n == 0
            seen.model = data["message"]["model"]
            assert data["message"]["content"] == []
            seen.usage = dict(data["message"]["usage"])  # message_delta's usage merges in
        elif kind == "content_block_start":
            assert open_index is None, "one open block at a time"
            assert data["index"] == len(blocks), "block indexes count from 0"
            block = dict(data["content_block"], parts=[])
            if block["type"] == "tool_use":
                assert _TOOL_ID.match(block["id"]), block["id"]
            blocks.append(block)
            open_index = data["index"]
        elif kind == "content_block_delta":
            assert data["index"] == open_index, "deltas go to the open block"
            block = blocks[data["index"]]
            delta = data["delta"]
            assert delta["type"] in _DELTA_FOR[block["type"]]
            if delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                key = {"text_delta": "text", "thinking_delta": "thinking"}.get(
                    delta["type"], "partial_json"
                )
                block["parts"].append(delta[key])
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "blocks close before message_delta"
            assert not delta_seen
            delta_seen = True
            seen.finish = data["delta"]["stop_reason"]
            seen.usage = {**(seen.usage or {}), **data["usage"]}
        elif kind == "message_stop":
            assert delta_seen
            stopped = True
        else:
            assert kind == "ping", kind
    assert stopped, "the stream must end with message_stop or error"
    for block in blocks:
        joined = "".join(block["parts"])
        if block["type"] == "text":
            seen.text += joined
        elif block["type"] == "thinking":
            seen.thinking += joined
            seen.signature = block.get("signature", seen.signature)
        else:
            seen.tools.append((block["id"], block["name"], _json_args(joined)))
    return seen


# --- OpenAI Responses ------------------------------------------------------------------------


def read_responses(body: bytes, *, strict_output: bool = True) -> Seen:
    events = events_of(body)
    seen = Seen()
    seq = None
    items: dict[int, dict[str, Any]] = {}
    done_items: dict[int, dict[str, Any]] = {}
    texts: dict[int, list[str]] = {}
    thoughts: dict[int, list[str]] = {}
    args: dict[int, list[str]] = {}
    terminal = None
    response_id = None
    for n, event in enumerate(events):
        data = json.loads(event.data)
        assert terminal is None, "nothing may follow the terminal event"
        assert data["type"] == event.event
        if seq is not None:
            assert data["sequence_number"] == seq + 1, "sequence numbers go up by one"
        seq = data["sequence_number"]
        kind = event.event
        if kind in ("response.created", "response.in_progress"):
            assert n <= 1
            response_id = data["response"]["id"]
            seen.model = data["response"]["model"]
        elif kind == "response.output_item.added":
            index = data["output_index"]
            assert index == len(items), "output indexes count from 0"
            items[index] = data["item"]
            texts[index], thoughts[index], args[index] = [], [], []
        elif kind == "response.output_item.done":
            index = data["output_index"]
            assert index in items and index not in done_items
            assert data["item"]["id"] == items[index]["id"]
            done_items[index] = data["item"]
        elif kind in (
            "response.output_text.delta",
            "response.reasoning_summary_text.delta",
            "response.function_call_arguments.delta",
        ):
            index = data["output_index"]
            assert index in items and index not in done_items, "a delta for an open item"
            assert data["item_id"] == items[index]["id"]
            target = {
                "response.output_text.delta": texts,
                "response.reasoning_summary_text.delta": thoughts,
                "response.function_call_arguments.delta": args,
            }[kind]
            target[index].append(data["delta"])
        elif kind == "response.output_text.done":
            assert data["text"] == "".join(texts[data["output_index"]])
        elif kind == "response.function_call_arguments.done":
            index = data["output_index"]
            if args[index]:
                assert data["arguments"] == "".join(args[index])
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            terminal = data
        elif kind == "error":
            seen.error = data
            assert data["code"] and data["message"]
        # other event kinds (content_part.*, summary_part.*, …) carry no new content
    if seen.error is not None and terminal is None:
        return seen  # an error before the response began needs nothing more
    assert terminal is not None, "a Responses stream ends with its terminal event"
    response = terminal["response"]
    if response_id is not None:
        assert response["id"] == response_id
    seen.finish = response["status"]
    if response["status"] == "incomplete":
        seen.finish = ("incomplete", response["incomplete_details"]["reason"])
    seen.usage = response["usage"]
    if response["status"] == "failed":
        assert seen.error is not None
        return seen
    if strict_output or response["output"]:
        assert response["output"] == [done_items[i] for i in sorted(done_items)], "full output"
    for index in sorted(done_items):
        item = done_items[index]
        if item["type"] == "message":
            assert item["content"][0]["text"] == "".join(texts[index])
            seen.text += "".join(texts[index])
        elif item["type"] == "reasoning":
            seen.thinking += "".join(thoughts[index])
            seen.signature = item.get("encrypted_content") or seen.signature
        elif item["type"] == "function_call":
            assert item["id"] and item["call_id"]
            seen.tools.append((item["call_id"], item["name"], _json_args(item["arguments"])))
    return seen


# --- Gemini ----------------------------------------------------------------------------------


def read_gemini(body: bytes) -> Seen:
    events = events_of(body)
    seen = Seen()
    chunks = []
    for event in events:
        if event.event == "error":
            assert event is events[-1]
            seen.error = json.loads(event.data)["error"]
            assert {"code", "message", "status"} <= set(seen.error)
            continue
        assert event.event is None
        chunk = json.loads(event.data)
        if "error" in chunk:  # Gemini's own in-stream error: a data line with an error body
            assert event is events[-1]
            seen.error = chunk["error"]
            continue
        chunks.append(chunk)
    return _read_gemini_chunks(chunks, seen)


def read_gemini_array(body: bytes) -> Seen:
    seen = Seen()
    chunks = json.loads(body)
    assert isinstance(chunks, list)
    if chunks and "error" in chunks[-1]:
        seen.error = chunks.pop()["error"]
    return _read_gemini_chunks(chunks, seen)


def _read_gemini_chunks(chunks: list[dict[str, Any]], seen: Seen) -> Seen:
    texts, thoughts = [], []
    for n, chunk in enumerate(chunks):
        seen.model = chunk.get("modelVersion")
        if "usageMetadata" in chunk:
            seen.usage = chunk["usageMetadata"]
        for cand in chunk.get("candidates", []):
            if cand.get("finishReason"):
                assert n == len(chunks) - 1, "the finish reason comes in the last chunk"
                seen.finish = cand["finishReason"]
            for part in cand.get("content", {}).get("parts", []):
                if "functionCall" in part:
                    call = part["functionCall"]
                    seen.tools.append((call.get("id", ""), call["name"], call["args"]))
                elif part.get("thought"):
                    thoughts.append(part["text"])
                elif "text" in part:
                    texts.append(part["text"])
    seen.text, seen.thinking = "".join(texts), "".join(thoughts)
    if seen.error is None:
        assert seen.finish is not None
    return seen


READERS = {
    Format.OPENAI_CHAT: read_chat,
    Format.CLAUDE: read_claude,
    Format.OPENAI_RESPONSES: read_responses,
    Format.GEMINI: read_gemini,
}

# --- what a client should see for an expected answer ------------------------------------------

_FINISH = {
    Format.OPENAI_CHAT: {"stop": "stop", "tool_use": "tool_calls", "length": "length"},
    Format.CLAUDE: {"stop": "end_turn", "tool_use": "tool_use", "length": "max_tokens"},
    Format.OPENAI_RESPONSES: {
        "stop": "completed",
        "tool_use": "completed",
        "length": ("incomplete", "max_output_tokens"),
    },
    Format.GEMINI: {"stop": "STOP", "tool_use": "STOP", "length": "MAX_TOKENS"},
}


def expected_finish(client: Format, expected: Expected) -> Any:
    return _FINISH[client][expected.finish]


def expected_usage(client: Format, e: Expected) -> dict[str, Any]:
    """The client's usage fields that must be present with these values."""
    if client is Format.OPENAI_CHAT:
        out: dict[str, Any] = {
            "prompt_tokens": e.input_tokens,
            "completion_tokens": e.output_tokens,
            "total_tokens": e.input_tokens + e.output_tokens,
        }
        if e.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": e.cached_tokens}
            if e.cache_creation_tokens:  # CLIProxyAPI's cache-write field (Claude reports it)
                out["prompt_tokens_details"]["cached_creation_tokens"] = e.cache_creation_tokens
        if e.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": e.reasoning_tokens}
        return out
    if client is Format.CLAUDE:
        out = {
            "input_tokens": e.input_tokens - e.cached_tokens - e.cache_creation_tokens,
            "output_tokens": e.output_tokens,
        }
        if e.cached_tokens:
            out["cache_read_input_tokens"] = e.cached_tokens
        return out
    if client is Format.OPENAI_RESPONSES:
        return {
            "input_tokens": e.input_tokens,
            "input_tokens_details": {"cached_tokens": e.cached_tokens},
            "output_tokens": e.output_tokens,
            "output_tokens_details": {"reasoning_tokens": e.reasoning_tokens},
            "total_tokens": e.input_tokens + e.output_tokens,
        }
    out = {
        "promptTokenCount": e.input_tokens,
        "candidatesTokenCount": e.output_tokens - e.reasoning_tokens,
        "totalTokenCount": e.input_tokens + e.output_tokens,
    }
    if e.cached_tokens:
        out["cachedContentTokenCount"] = e.cached_tokens
    if e.reasoning_tokens:
        out["thoughtsTokenCount"] = e.reasoning_tokens
    return out


def assert_usage(client: Format, seen: Seen, expected: Expected) -> None:
    assert seen.usage is not None
    for key, value in expected_usage(client, expected).items():
        assert seen.usage.get(key) == value, (key, seen.usage)


def assert_sees(client: Format, seen: Seen, sample: Sample) -> None:
    """What every client must get from `sample`, whatever the provider."""
    e = sample.expected
    assert seen.error is None, seen.error
    assert seen.text == e.text
    assert seen.thinking == e.thinking
    assert seen.tool_calls() == e.tools
    assert seen.finish == expected_finish(client, e)
    assert_usage(client, seen, e)
    # signatures reach the clients that can carry them back
    if client in (Format.CLAUDE, Format.OPENAI_RESPONSES):
        assert seen.signature == e.signature


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLE_IDS)
def test_reference_client_reads_the_upstream_sample_itself(sample: Sample) -> None:
    if sample.provider is Format.OPENAI_RESPONSES:
        # Codex may leave response.completed's output empty; clients get it back-filled
        seen = read_responses(sample.body, strict_output=False)
    else:
        seen = READERS[sample.provider](sample.body)
    assert_sees(sample.provider, seen, sample)
    assert seen.model == sample.upstream_model
