"""RW-*, SAN-*, PRX-13: the response rewriter and the request sanitiser (amp.md §2.8)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy.amp.rewriter import (
    MAX_BUFFERED,
    ResponseRewriter,
    RewritingTranslator,
    request_tool_names,
)
from cliproxy.amp.sanitize import filter_beta_features, sanitize_request_body


def j(data: bytes):
    return json.loads(data)


def test_RW_01_model_fields_get_the_original_name():
    rw = ResponseRewriter("gpt-5.2(xhigh)")
    out = j(rw.rewrite_json(b'{"model":"test/gpt-5.2","x":1}'))
    assert out == {"model": "gpt-5.2(xhigh)", "x": 1}
    out = j(
        rw.rewrite_json(
            b'{"type":"response.completed","response":{"model":"m2","modelVersion":"v"}}'
        )
    )
    assert out["response"] == {"model": "gpt-5.2(xhigh)", "modelVersion": "gpt-5.2(xhigh)"}
    out = j(rw.rewrite_json(b'{"type":"message_start","message":{"model":"m","content":[]}}'))
    assert out["message"]["model"] == "gpt-5.2(xhigh)"
    out = j(rw.rewrite_json(b'{"candidates":[],"modelVersion":"gemini-x"}'))
    assert out["modelVersion"] == "gpt-5.2(xhigh)"
    same = b'{"id": "x",  "object": "list"}'
    assert rw.rewrite_json(same) is same  # no model field: bytes unchanged
    plain = b'{"model":"upstream"}'
    assert ResponseRewriter("").rewrite_json(plain) is plain


def test_RW_02_sse_chunks_rewritten_in_place_framing_kept():
    rw = ResponseRewriter("orig")
    chunk = (
        b"event: response.completed\n"
        b'data: {"type":"response.completed","response":{"model":"m"}}\n\n'
        b'data: {"model":"m","choices":[]}\n\n'
    )
    out = rw.feed(chunk) + rw.flush()
    assert out.count(b"\n\n") == 2 and out.endswith(b"\n\n")
    lines = out.split(b"\n")
    assert lines[0] == b"event: response.completed"
    assert j(lines[1][6:])["response"]["model"] == "orig"
    assert j(lines[3][6:])["model"] == "orig"


def test_RW_03_stream_keeps_thinking_and_injects_two_signatures():
    rw = ResponseRewriter("claude-x")
    events = [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hmm"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
        },
        {"type": "content_block_stop", "index": 1},
    ]
    raw = b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for e in events
    )
    out = rw.feed(raw) + rw.flush()
    assert out.count(b'"signature":""') == 2
    assert b"thinking_delta" in out and b'"hmm"' in out
    assert out.count(b"content_block_stop") == 4  # event lines and data lines


def test_RW_04_tool_names_canonicalised():
    rw = ResponseRewriter()
    body = {
        "content": [
            {"type": "tool_use", "id": "1", "name": "bash", "input": {}, "signature": ""},
            {"type": "tool_use", "id": "2", "name": "read", "input": {}, "signature": ""},
            {"type": "tool_use", "id": "3", "name": "grep", "input": {}, "signature": ""},
            {"type": "tool_use", "id": "4", "name": "task", "input": {}, "signature": ""},
            {"type": "tool_use", "id": "5", "name": "check", "input": {}, "signature": ""},
            {"type": "tool_use", "id": "6", "name": "glob", "input": {}, "signature": ""},
        ]
    }
    out = j(rw.rewrite_json(json.dumps(body).encode()))
    assert [b["name"] for b in out["content"]] == ["Bash", "Read", "Grep", "Task", "Check", "glob"]
    stream = (
        b'data: {"type":"content_block_start",'
        b'"content_block":{"type":"tool_use","name":"bash","signature":""}}\n'
    )
    assert b'"name":"Bash"' in rw.feed(stream)
    for name in ("Bash", "edit_file", "glob"):
        raw = json.dumps(
            {"content": [{"type": "tool_use", "name": name, "input": {}, "signature": ""}]}
        ).encode()
        assert rw.rewrite_json(raw) is raw  # unchanged bytes


def test_RW_05_request_advertised_casing_wins_without_conflicts():
    def name_after(tools, returned="glob", stream=False):
        rw = ResponseRewriter("", request_tool_names({"tools": [{"name": t} for t in tools]}))
        if stream:
            line = json.dumps(
                {
                    "type": "content_block_start",
                    "content_block": {"type": "tool_use", "name": returned},
                }
            ).encode()
            return j(rw.feed(b"data: " + line + b"\n")[6:])["content_block"]["name"]
        raw = json.dumps(
            {"content": [{"type": "tool_use", "name": returned, "input": {}}]}
        ).encode()
        return j(rw.rewrite_json(raw))["content"][0]["name"]

    for stream in (False, True):
        assert name_after(["Glob"], stream=stream) == "Glob"
        assert name_after(["glob"], stream=stream) == "glob"
        assert name_after(["Glob", "glob"], stream=stream) == "glob"
        assert name_after(["glob", "Glob"], stream=stream) == "glob"
        assert name_after(["Bash", "bash"], returned="bash", stream=stream) == "bash"
    names = request_tool_names({"tool_choice": {"type": "tool", "name": "Set_Title"}})
    assert names == {"set_title": "Set_Title"}


def test_RW_06_buffering_rules():
    rw = ResponseRewriter("orig")
    # SSE found by content type or by a data:/event: line, even in a "JSON" answer
    sse = b'data: {"model":"m"}\n\n'
    assert b'"orig"' in rw.rewrite_body(sse, "application/json")
    assert b'"orig"' in ResponseRewriter("orig").rewrite_body(
        b'data: {"model":"m"}', "text/event-stream"
    )
    # big non-SSE bodies are not held for rewriting
    big = json.dumps({"model": "m", "pad": "x" * (MAX_BUFFERED + 10)}).encode()
    assert rw.rewrite_body(big, "application/json") is big
    small = rw.rewrite_body(b'{"model":"m", "a": 1}', "application/json")
    assert j(small)["model"] == "orig"


def test_RW_06_buffered_body_gets_a_corrected_content_length():
    """The JSON answer's Content-Length is set from the rewritten body (endpoint answer())."""
    from twisted.internet import task
    from twisted.web.server import Request
    from twisted.web.test.requesthelper import DummyChannel

    from cliproxy.amp.fallback import AmpAnswers
    from cliproxy.config import parse_config
    from cliproxy.routing import JSONResult
    from cliproxy.web.endpoints import Backend, IAnswerFilter, Messages
    from tests.web.httpwire import HalfCloseTransport

    class Stats:
        def finished(self, *a):
            self.seen = a

    config = parse_config("host: 127.0.0.1\n")
    resource = Messages(Backend(None, lambda: config, task.Clock()))
    stats = Stats()
    channel = DummyChannel()
    channel.transport = HalfCloseTransport()
    request = Request(channel)
    request.method = b"POST"
    request.clientproto = b"HTTP/1.1"
    rewriter = ResponseRewriter("a-much-longer-original-model-name")
    request.setComponent(IAnswerFilter, AmpAnswers(rewriter, "local", stats))
    body = b'{"model":"m","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3}}'
    resource.answer(JSONResult(200, body), request, None)
    written = channel.transport.value()
    head, _, payload = written.partition(b"\r\n\r\n")
    length = int(
        [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][
            0
        ].split(b":")[1]
    )
    assert length == len(payload) and j(payload)["model"] == "a-much-longer-original-model-name"
    assert stats.seen[0] == "local"


def test_RW_07_framer_never_rewrites_a_partial_line():
    rw = ResponseRewriter("orig")
    line = b'event: message_start\ndata: {"type":"message_start","message":{"model":"m"}}\n\n'
    out = b""
    for i in range(len(line)):  # one byte per read, the orphan event: line case included
        out += rw.feed(line[i : i + 1])
    out += rw.flush()
    assert out.startswith(b"event: message_start\n")
    assert j(out.split(b"\n")[1][6:])["message"]["model"] == "orig"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_RW_07_any_split_gives_the_same_output(cuts):
    stream = (
        b": keep-alive\n\n"
        b"event: message_start\r\n"
        b'data: {"type":"message_start","message":{"model":"m","content":[]}}\r\n\r\n'
        b'data: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"tool_use","name":"bash"}}\n\n'
        b"data: [DONE]\n\n"
    )
    whole = ResponseRewriter("o").feed(stream)
    rw = ResponseRewriter("o")
    out, pos = b"", 0
    for c in cuts:
        out += rw.feed(stream[pos : pos + c])
        pos += c
    out += rw.feed(stream[pos:]) + rw.flush()
    assert out == whole
    assert out.startswith(b": keep-alive\n\n") and out.endswith(b"data: [DONE]\n\n")
    assert b'"name":"Bash"' in out and b"\r\n" in out


def test_RW_07_translator_wrapper_rewrites_emitted_events():
    class Inner:
        done = False
        usage = "u"

        def feed(self, ev):
            return [b'data: {"model":"up",', b'"x":1}\n\n']

        def finish(self):
            return [b'data: {"model":"up"}']

        def error(self, status, message):
            return []

    t = RewritingTranslator(Inner(), ResponseRewriter("orig"))
    assert t.usage == "u" and t.done is False
    assert j(t.feed(None)[0][6:]) == {"model": "orig", "x": 1}
    assert j(t.finish()[0][6:]) == {"model": "orig"}


def test_non_stream_thinking_suppressed_next_to_tool_use_only_when_asked():
    body = json.dumps(
        {
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "name": "Read", "input": {}, "signature": ""},
            ]
        }
    ).encode()
    kept = j(ResponseRewriter("", suppress_thinking=False).rewrite_json(body))
    assert [b["type"] for b in kept["content"]] == ["thinking", "tool_use"]
    dropped = j(ResponseRewriter("", suppress_thinking=True).rewrite_json(body))
    assert [b["type"] for b in dropped["content"]] == ["tool_use"]
    text_only = json.dumps(
        {"content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
    ).encode()
    assert ResponseRewriter("", suppress_thinking=True).rewrite_json(text_only) is text_only


def assistant(*blocks):
    return {"role": "assistant", "content": list(blocks)}


def test_SAN_01_drops_thinking_without_a_usable_signature():
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            assistant(
                {"type": "thinking", "thinking": "a"},
                {"type": "thinking", "thinking": "b", "signature": None},
                {"type": "thinking", "thinking": "c", "signature": ""},
                {"type": "thinking", "thinking": "d", "signature": "   "},
                {"type": "thinking", "thinking": "e", "signature": 12},
                {"type": "thinking", "thinking": "ok", "signature": "sig-ok"},
                {"type": "text", "text": "answer"},
            ),
        ]
    }
    out = j(sanitize_request_body(json.dumps(body).encode()))
    content = out["messages"][1]["content"]
    assert content == [
        {"type": "thinking", "thinking": "ok", "signature": "sig-ok"},
        {"type": "text", "text": "answer"},
    ]


def test_SAN_02_strips_signature_from_tool_use_only():
    body = {
        "messages": [
            assistant(
                {"type": "thinking", "thinking": "ok", "signature": "sig"},
                {"type": "tool_use", "id": "t", "name": "Bash", "input": {}, "signature": ""},
                {"type": "tool_use", "id": "u", "name": "Read", "input": {}, "signature": "x"},
            )
        ]
    }
    content = j(sanitize_request_body(json.dumps(body).encode()))["messages"][0]["content"]
    assert content[0]["signature"] == "sig"
    assert [("signature" in b, b["type"]) for b in content[1:]] == [(False, "tool_use")] * 2


def test_SAN_03_raw_values_kept_other_roles_untouched_empty_content():
    raw = (
        b'{"model":"m","messages":[{"role":"user","content":[{"type":"thinking","thinking":"x"}]},'
        b'{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n",'
        b'"input":{"big":12345678901234567890123,"f":0.1},"signature":""}]},'
        b'{"role":"assistant","content":[{"type":"thinking","thinking":"gone"}]}]}'
    )
    out = sanitize_request_body(raw)
    assert b"12345678901234567890123" in out and b'"f":0.1' in out
    parsed = j(out)
    assert parsed["messages"][0]["content"] == [{"type": "thinking", "thinking": "x"}]
    assert parsed["messages"][2]["content"] == []
    untouched = b'{"messages":[{"role":"user","content":"hi"}]}'
    assert sanitize_request_body(untouched) is untouched
    assert sanitize_request_body(b"not json") == b"not json"


def test_PRX_13_filter_beta_features():
    f = "context-1m-2025-08-07"
    assert filter_beta_features(f"{f},other-2025", f) == "other-2025"
    assert filter_beta_features(f"a, {f} ,b", f) == "a,b"
    assert filter_beta_features(f"a , b,{f}", f) == "a,b"
    assert filter_beta_features(f, f) == ""
    assert filter_beta_features("", f) == ""
    assert filter_beta_features("a,b", f) == "a,b"
