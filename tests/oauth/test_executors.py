"""The subscription executors' requests (pure `build`) and Cloud Code's answer unwrapping."""

from __future__ import annotations

import gzip
import json

import pytest
import pytest_twisted
from twisted.internet import task

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.model import Credential
from cliproxy.upstream import UpstreamConfigError, executor_for
from cliproxy.upstream.body import read_body
from cliproxy.upstream.claude_oauth import CLAUDE_CODE_SYSTEM, DEFAULT_OAUTH_BETAS
from cliproxy.upstream.gemini_cli import UnwrappedResponse
from cliproxy.upstream.oauth_call import BufferedResponse, OAuthCall
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file, write_file


def account(tmp_path, name, record):
    write_file(tmp_path, name, record)
    clock = task.Clock()
    authdir = AuthDir(lambda: str(tmp_path), clock, OAuthEndpoints)
    authdir.scan()
    return authdir.credentials()[0]


@pytest.fixture
def claude(tmp_path):
    return account(tmp_path, "claude-a.json", claude_file("at", "rt", T0))


MESSAGES = {
    "max_tokens": 100,
    "system": [{"type": "text", "text": "Be brief."}],
    "messages": [{"role": "user", "content": "hi"}],
}


def test_claude_build_has_no_key_and_the_subscription_headers(claude):
    ex = executor_for(claude)
    call = ex.build(claude, model="claude-sonnet-4-6", body=MESSAGES, stream=True)
    assert isinstance(call, OAuthCall) and call.holder is not None
    h = {k.lower(): v for k, v in call.headers.items()}
    assert "authorization" not in h and "x-api-key" not in h  # added at send time
    assert "anthropic-dangerous-direct-browser-access" not in h
    assert h["anthropic-beta"] == DEFAULT_OAUTH_BETAS
    assert h["anthropic-version"] == "2023-06-01" and h["x-app"] == "cli"
    assert h["user-agent"] == "claude-cli/2.1.63 (external, cli)"
    assert len(h["x-claude-code-session-id"]) == 36 and len(h["x-client-request-id"]) == 36
    assert call.url == "https://api.anthropic.com/v1/messages?beta=true"
    again = ex.build(claude, model="claude-sonnet-4-6", body=MESSAGES, stream=True)
    assert again.headers["X-Claude-Code-Session-Id"] == h["x-claude-code-session-id"]
    body = json.loads(call.body)
    assert body["system"][0]["text"] == CLAUDE_CODE_SYSTEM
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "<system-reminder>\nBe brief.\n</system-reminder>"},
        {"type": "text", "text": "hi"},
    ]
    assert MESSAGES["messages"][0]["content"] == "hi"  # the input is not modified


def test_claude_code_itself_keeps_its_own_system_and_betas(claude):
    ex = executor_for(claude)
    body = dict(MESSAGES, betas=["files-api-2025-04-14"])
    call = ex.build(
        claude,
        model="claude-sonnet-4-6",
        body=body,
        stream=False,
        client_headers={"User-Agent": "claude-cli/2.1.0 (external, cli)", "anthropic-beta": "x-1"},
    )
    sent = json.loads(call.body)
    assert sent["system"] == MESSAGES["system"] and "betas" not in sent
    assert call.headers["Anthropic-Beta"] == (
        "x-1,files-api-2025-04-14,interleaved-thinking-2025-05-14,oauth-2025-04-20"
    )


def test_claude_cloaking_respects_the_cache_breakpoint_limit(claude):
    marked = {"type": "text", "text": "t", "cache_control": {"type": "ephemeral"}}
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": [marked] * 4}]}
    call = executor_for(claude).build(claude, model="claude-opus-4-6", body=body, stream=False)
    assert json.loads(call.body)["system"] == [{"type": "text", "text": CLAUDE_CODE_SYSTEM}]
    haiku = executor_for(claude).build(
        claude, model="claude-3-5-haiku-20241022", body=MESSAGES, stream=False
    )
    assert json.loads(haiku.body)["system"] == MESSAGES["system"]


def test_claude_count_tokens_and_own_headers(tmp_path):
    cred = account(
        tmp_path, "claude-b.json", dict(claude_file("at", "rt", T0), headers={"X-App": "mine"})
    )
    call = executor_for(cred).build(
        cred, model="claude-sonnet-4-6", body=MESSAGES, stream=False, action="count_tokens"
    )
    assert call.url == "https://api.anthropic.com/v1/messages/count_tokens?beta=true"
    assert call.headers["X-App"] == "mine"
    assert "metadata" not in json.loads(call.body)


def test_codex_build(tmp_path):
    cred = account(tmp_path, "codex-a.json", codex_file("at", "rt", T0))
    body = {"input": [{"role": "user", "content": "hi"}], "previous_response_id": "r1"}
    call = executor_for(cred).build(
        cred, model="gpt-5.4", body=body, stream=False, client_headers={"Originator": "mine"}
    )
    assert call.url == "https://chatgpt.com/backend-api/codex/responses"
    assert call.stream is True
    sent = json.loads(call.body)
    assert sent["stream"] is True and sent["store"] is False and sent["instructions"] == ""
    assert "previous_response_id" not in sent
    assert call.headers["Originator"] == "mine"
    assert "Authorization" not in call.headers
    headers = executor_for(cred).auth_headers(call, "tok")
    assert headers["Authorization"] == "Bearer tok"
    assert headers["Chatgpt-Account-Id"] == "acct-fake-0001"


def test_gemini_cli_envelope(tmp_path):
    cred = account(tmp_path, "gemini-a.json", gemini_file("at", "rt", T0, "proj-1"))
    ex = executor_for(cred)
    body = {
        "model": "ignored",
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {"parts": [{"text": "a"}]},
            {"role": "assistant", "parts": [{"text": "b"}]},
            {"role": "user", "parts": [{"text": "c"}]},
        ],
        "safetySettings": [{"category": "x", "threshold": "BLOCK_NONE"}],
    }
    call = ex.build(cred, model="models/gemini-2.5-pro", body=body, stream=True)
    assert (
        call.url == "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse"
    )
    sent = json.loads(call.body)
    assert (sent["project"], sent["model"]) == ("proj-1", "gemini-2.5-pro")
    request = sent["request"]
    assert "model" not in request and request["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert [c["role"] for c in request["contents"]] == ["user", "model", "user"]
    assert call.headers["Accept"] == "text/event-stream"
    assert call.headers["X-Goog-Api-Client"] == "google-genai-sdk/1.41.0 gl-node/v22.19.0"
    count = ex.build(cred, model="gemini-2.5-pro", body=body, stream=False, action="count_tokens")
    assert count.url.endswith("/v1internal:countTokens")
    sent = json.loads(count.body)
    assert set(sent) == {"request"} and "safetySettings" not in sent["request"]


def test_a_config_credential_is_refused_by_an_oauth_executor(claude):
    plain = Credential(id="x", provider="claude", kind="oauth", api_key="", base_url="")
    with pytest.raises(UpstreamConfigError, match="carries no OAuth token"):
        executor_for(plain).build(plain, model="m", body={}, stream=False)


# -- Cloud Code answers ------------------------------------------------------------------


def envelope(text):
    return {"response": {"candidates": [{"content": {"parts": [{"text": text}]}}]}, "traceId": "t"}


@pytest_twisted.ensureDeferred
async def test_stream_envelopes_are_unwrapped_across_odd_splits():
    wire = "".join(f"data: {json.dumps(envelope(t))}\r\n\r\n" for t in ("a", "b")).encode()

    class Split(BufferedResponse):
        def deliverBody(self, protocol):
            from twisted.python.failure import Failure
            from twisted.web.client import ResponseDone

            from cliproxy.upstream.oauth_call import _NoTransport

            protocol.makeConnection(_NoTransport())
            for i in range(0, len(wire), 7):
                protocol.dataReceived(wire[i : i + 7])
            protocol.connectionLost(Failure(ResponseDone()))

    out = await read_body(UnwrappedResponse(Split(200, b""), stream=True), 1 << 20)
    events = [json.loads(line[6:]) for line in out.decode().split("\r\n") if line]
    assert events == [envelope("a")["response"], envelope("b")["response"]]


@pytest_twisted.ensureDeferred
async def test_plain_and_gzip_answers_are_unwrapped():
    raw = json.dumps(envelope("x")).encode()
    out = await read_body(UnwrappedResponse(BufferedResponse(200, raw), stream=False), 1 << 20)
    assert json.loads(out) == envelope("x")["response"]
    zipped = BufferedResponse(200, gzip.compress(raw))
    zipped.headers.setRawHeaders(b"content-encoding", [b"gzip"])  # sent although not asked
    unwrapped = UnwrappedResponse(zipped, stream=False)
    assert not unwrapped.headers.hasHeader(b"content-encoding")
    assert json.loads(await read_body(unwrapped, 1 << 20)) == envelope("x")["response"]
    not_json = BufferedResponse(200, b"<html>")
    assert await read_body(UnwrappedResponse(not_json, stream=False), 100) == b"<html>"


def test_claude_oauth_sends_claude_codes_identity_for_other_clients(claude):
    ex = executor_for(claude)
    other = {"User-Agent": "OpenAI/Python 1.99", "X-Stainless-Lang": "python"}
    call = ex.build(
        claude, model="claude-sonnet-4-6", body=MESSAGES, stream=True, client_headers=other
    )
    h = {k.lower(): v for k, v in call.headers.items()}
    assert h["user-agent"] == "claude-cli/2.1.63 (external, cli)"
    assert h["x-stainless-lang"] == "js"
    code = {"User-Agent": "claude-cli/2.2.0 (external, cli)", "X-Stainless-Lang": "js2"}
    call = ex.build(
        claude, model="claude-sonnet-4-6", body=MESSAGES, stream=True, client_headers=code
    )
    assert call.headers["User-Agent"] == "claude-cli/2.2.0 (external, cli)"
    assert call.headers["X-Stainless-Lang"] == "js2"


def test_claude_oauth_applies_the_messages_body_rules(claude):
    body = {
        **MESSAGES,
        "temperature": 0.3,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [
            {"name": f"t{i}", "input_schema": {}, "cache_control": {"type": "ephemeral"}}
            for i in range(5)
        ],
    }
    call = executor_for(claude).build(claude, model="claude-sonnet-4-6", body=body, stream=True)
    sent = json.loads(call.body)
    assert "temperature" not in sent
    marked = [t for t in sent["tools"] if "cache_control" in t]
    assert len(marked) + ("cache_control" in sent["system"][0]) <= 4
    assert "cache_control" in sent["tools"][-1]
