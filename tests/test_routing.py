"""Routing's pieces on their own: failure classification, local bodies, the bootstrap sink.

The whole `Router` is exercised against fake upstreams in tests/test_serving.py,
tests/test_serving_extra.py and tests/test_matrix.py.
"""

from __future__ import annotations

import json

import pytest
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from cliproxy.credentials.pool import AllCoolingDown, NoCredential
from cliproxy.formats import Format
from cliproxy.registry import ModelSpec, ThinkingSpec, UnknownModel
from cliproxy.routing import BootstrapSink, ClientRequest, is_request_invalid, parse_retry_after
from cliproxy.routing.bodies import count_answer, local_count, thinking_caps
from cliproxy.routing.classify import (
    AttemptFailure,
    is_model_unsupported,
    retry_after_header,
    selection_error,
    upstream_error,
)

# -- which failures another credential would repeat ---------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, b"{}"),
        (400, b'{"error":{"type":"invalid_request_error","message":"bad tools"}}'),
        (400, b'{"error":{"status":"INVALID_ARGUMENT"}}'),
        (404, b'{"error":{"message":"item stored response not found"}}'),
        (500, b'{"error":{"status": "UNKNOWN"}}'),
    ],
)
def test_a_request_at_fault_is_not_retried_on_another_credential(status: int, body: bytes) -> None:
    assert is_request_invalid(status, body)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b'{"error":{"type":"invalid_request_error","message":"model x not supported"}}'),
        (429, b'{"error":{"type":"invalid_request_error"}}'),
        (401, b"unauthorized"),
        (500, b'{"error":{"status":"INTERNAL"}}'),
    ],
)
def test_failures_of_the_credential_fail_over(status: int, body: bytes) -> None:
    assert not is_request_invalid(status, body)


def test_a_model_this_credential_does_not_serve_is_recognised() -> None:
    body = b'{"error":{"message":"The model gpt-9 does not exist"}}'
    assert is_model_unsupported(400, body)
    assert not is_model_unsupported(404, body)
    assert not is_model_unsupported(400, b'{"error":"bad"}')


# -- how long to wait -----------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    headers = Headers({b"retry-after": [b" 12 "]})
    assert parse_retry_after(headers, b"", now=0.0) == 12.0


def test_retry_after_as_an_http_date() -> None:
    headers = Headers({b"retry-after": [b"Thu, 01 Jan 1970 00:01:40 GMT"]})
    assert parse_retry_after(headers, b"", now=70.0) == 30.0
    assert parse_retry_after(headers, b"", now=500.0) == 0.0


def test_retry_after_from_geminis_retry_info() -> None:
    body = b'{"error":{"details":[{"@type":"RetryInfo","retryDelay": "3.5s"}]}}'
    assert parse_retry_after(None, body, now=0.0) == 3.5
    assert parse_retry_after(Headers({b"retry-after": [b"soon"]}), body, now=0.0) == 3.5


def test_no_retry_after() -> None:
    assert parse_retry_after(Headers(), b"{}", now=0.0) is None


def test_retry_after_header_rounds_up_to_whole_seconds_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.0, 0.2, 1.0, 1.01, 59.5)] == [
        "1",
        "1",
        "1",
        "2",
        "60",
    ]


# -- what the client is told ------------------------------------------------------------------


def test_selection_errors_become_route_errors() -> None:
    unknown = selection_error(UnknownModel("nope"))
    assert (unknown.status, unknown.code) == (404, "model_not_found")
    assert "nope" in unknown.message
    missing = selection_error(NoCredential("claude-x", ("claude",)))
    assert (missing.status, missing.code, missing.type) == (503, "auth_not_found", "api_error")
    resting = selection_error(AllCoolingDown("m", ("claude",), 2.2))
    assert (resting.status, resting.code) == (429, "model_cooldown")
    assert resting.headers == {"Retry-After": "3"}


def test_the_last_upstream_failure_in_the_clients_shape_keeps_retry_after() -> None:
    failure = AttemptFailure(
        429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}', 4.2
    )
    err = upstream_error(Format.OPENAI_CHAT, failure)
    assert err.status == 429
    assert err.headers == {"Retry-After": "5"}
    assert err.body is not None and "slow" in json.dumps(err.body)


# -- bodies made here -------------------------------------------------------------------------


def request(fmt: Format, action: str = "count_tokens") -> ClientRequest:
    body = {"messages": [{"role": "user", "content": "hello there"}]}
    if fmt is Format.GEMINI:
        body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    return ClientRequest(fmt, "m", body, False, action=action)


def test_openai_providers_have_their_tokens_counted_here() -> None:
    out = json.loads(local_count(request(Format.CLAUDE), Format.OPENAI_CHAT) or b"")
    assert set(out) == {"input_tokens"} and out["input_tokens"] > 0
    gemini = json.loads(local_count(request(Format.GEMINI), Format.OPENAI_RESPONSES) or b"")
    assert gemini["promptTokensDetails"][0]["tokenCount"] == gemini["totalTokens"] > 0


def test_claude_and_gemini_providers_count_for_themselves() -> None:
    assert local_count(request(Format.CLAUDE), Format.CLAUDE) is None
    assert local_count(request(Format.CLAUDE), Format.GEMINI) is None


def test_a_providers_count_is_reshaped_for_the_client() -> None:
    raw = b'{"totalTokens": 9}'
    assert count_answer(request(Format.GEMINI), Format.GEMINI, json.loads(raw), raw) == raw
    assert json.loads(
        count_answer(request(Format.CLAUDE), Format.GEMINI, {"totalTokens": 9}, raw)
    ) == {"input_tokens": 9}
    assert json.loads(
        count_answer(request(Format.GEMINI), Format.CLAUDE, {"input_tokens": 4}, None)
    ) == {
        "totalTokens": 4,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }


def test_thinking_caps_from_the_catalog() -> None:
    spec = ModelSpec("m", "M", 0, "o", output=64, thinking=ThinkingSpec(min=1, max=8))
    assert thinking_caps(spec) == {
        "min": 1,
        "max": 8,
        "levels": (),
        "zero_allowed": False,
        "dynamic_allowed": False,
        "output": 64,
    }
    assert thinking_caps(ModelSpec("m", "M", 0, "o")) == {}
    assert thinking_caps(ModelSpec("m", "M", 0, "o", user_defined=True)) is None
    assert thinking_caps(None) is None


# -- the bootstrap sink ---------------------------------------------------------------------------


class Target:
    def __init__(self) -> None:
        self.got: list[object] = []

    def on_data(self, data: bytes) -> None:
        self.got.append(data)

    def on_end(self, reason: Failure | None) -> None:
        self.got.append(("end", reason))


def test_the_sink_holds_the_first_bytes_until_the_relay_attaches() -> None:
    sink = BootstrapSink()
    first: list[bool] = []
    sink.first.addCallback(first.append)
    sink.on_data(b"a")
    sink.on_data(b"b")
    assert first == [True]
    target = Target()
    sink.attach(target)
    sink.on_data(b"c")
    sink.on_end(None)
    assert target.got == [b"a", b"b", b"c", ("end", None)]


def test_a_stream_that_ends_before_any_byte_says_so() -> None:
    sink = BootstrapSink()
    first: list[bool] = []
    sink.first.addCallback(first.append)
    reason = Failure(ConnectionError("reset"))
    sink.on_end(reason)
    assert first == [False]
    target = Target()
    sink.attach(target)
    assert target.got == [("end", reason)]


# -- module headers ---------------------------------------------------------------------------


def test_test_case_name_headers_of_routing_registry_and_usage_name_real_test_modules() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    sources = [
        *sorted((root / "cliproxy" / "routing").glob("*.py")),
        *sorted((root / "cliproxy" / "registry").glob("*.py")),
        root / "cliproxy" / "usage.py",
    ]
    named = {}
    for source in sources:
        first = source.read_text(encoding="utf-8").splitlines()[0]
        m = re.match(r"# -\*- test-case-name: ([\w.]+) -\*-", first)
        if m:
            named[source.name] = m.group(1)
    assert named  # the pattern still matches how the headers are written
    for module in named.values():
        assert (root / (module.replace(".", "/") + ".py")).is_file(), module
