"""`Executor.build` per provider: URLs, headers, auth, and body fix-ups (no sockets)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cliproxy.credentials.model import Credential, ModelAlias
from cliproxy.formats import Format
from cliproxy.upstream import (
    NoExecutor,
    UnsupportedAction,
    UpstreamConfigError,
    executor_for,
)
from cliproxy.upstream.claude import ClaudeExecutor
from cliproxy.upstream.codex import CodexExecutor
from cliproxy.upstream.gemini import GeminiExecutor
from cliproxy.upstream.openai_compat import OpenAICompatExecutor, OpenAIResponsesCompatExecutor
from cliproxy.upstream.vertex import VertexExecutor
from cliproxy.upstream.vertex_key import VertexKeyExecutor

KEY = "sk-upstream-key-9876"
CLIENT_SECRETS = {
    "Authorization": "Bearer sk-client",
    "X-Api-Key": "sk-client",
    "x-goog-api-key": "sk-client",
    "Cookie": "session=sk-client",
}


def cred(kind, provider, base="", headers=(), api_key=KEY, options=()):
    return Credential(
        id=f"{kind}:x",
        provider=provider,
        kind=kind,
        api_key=api_key,
        base_url=base,
        headers=tuple(headers),
        options=tuple(options),
    )


def lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def no_client_secret(call):
    blob = json.dumps(call.headers) + call.body.decode()
    assert "sk-client" not in blob


# -- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, cls, fmt",
    [
        ("claude-api-key", ClaudeExecutor, Format.CLAUDE),
        ("gemini-api-key", GeminiExecutor, Format.GEMINI),
        ("vertex-api-key", VertexKeyExecutor, Format.GEMINI),
        ("codex-api-key", CodexExecutor, Format.OPENAI_RESPONSES),
        ("openai-compatibility", OpenAICompatExecutor, Format.OPENAI_CHAT),
    ],
)
def test_executor_for_each_api_key_kind(kind, cls, fmt):
    ex = executor_for(cred(kind, "p"))
    assert type(ex) is cls and ex.format is fmt


def test_executor_for_unknown_kind_names_it():
    with pytest.raises(NoExecutor, match="oauth"):
        executor_for(cred("oauth", "kiro"))  # no kiro executor


def test_only_codex_always_streams():
    assert executor_for(cred("codex-api-key", "codex")).always_streams
    assert not executor_for(cred("claude-api-key", "claude")).always_streams


# -- Claude --------------------------------------------------------------------------------


def test_claude_stream_on_anthropic_uses_x_api_key_and_event_stream():
    c = cred("claude-api-key", "claude", "https://api.anthropic.com/")
    body = {"model": "alias", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    call = ClaudeExecutor().build(
        c,
        model="claude-sonnet-4-5",
        body=body,
        stream=True,
        client_headers={**CLIENT_SECRETS, "Anthropic-Beta": "context-1m-2025-08-07"},
    )
    h = lower(call.headers)
    assert call.method == "POST"
    assert call.url == "https://api.anthropic.com/v1/messages?beta=true"
    assert h["x-api-key"] == KEY and "authorization" not in h
    assert h["anthropic-version"] == "2023-06-01"
    assert h["anthropic-beta"] == "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    assert h["anthropic-dangerous-direct-browser-access"] == "true"
    assert h["accept"] == "text/event-stream" and h["accept-encoding"] == "identity"
    assert h["user-agent"].startswith("claude-cli/")
    sent = json.loads(call.body)
    assert sent["model"] == "claude-sonnet-4-5" and sent["stream"] is True
    assert body["model"] == "alias"  # the caller's dict is untouched
    no_client_secret(call)


def test_claude_other_base_uses_bearer_and_merges_body_betas():
    c = cred("claude-api-key", "claude", "http://gateway.local:8080")
    call = ClaudeExecutor().build(
        c,
        model="m",
        body={"messages": [], "betas": ["b1", "b2"], "stream": True},
        stream=False,
        client_headers={"anthropic-beta": "b2,b3", "User-Agent": "claude-cli/9 (x)"},
    )
    h = lower(call.headers)
    assert h["authorization"] == f"Bearer {KEY}" and "x-api-key" not in h
    assert h["anthropic-beta"] == "b2,b3,b1,interleaved-thinking-2025-05-14"
    assert h["user-agent"] == "claude-cli/9 (x)"  # the client's value wins
    assert h["accept"] == "application/json" and "gzip" in h["accept-encoding"]
    sent = json.loads(call.body)
    assert "betas" not in sent and "stream" not in sent


def test_claude_count_tokens_path_and_trimmed_body():
    c = cred("claude-api-key", "claude")
    call = ClaudeExecutor().build(
        c,
        model="m",
        body={"messages": [], "max_tokens": 9, "stream": True, "temperature": 1, "tools": []},
        stream=True,
        action="count_tokens",
    )
    assert call.url == "https://api.anthropic.com/v1/messages/count_tokens?beta=true"
    assert json.loads(call.body) == {"messages": [], "tools": [], "model": "m"}
    assert not call.stream


def test_claude_credential_headers_are_applied_last():
    c = cred(
        "claude-api-key",
        "claude",
        headers=[("anthropic-version", "2099-01-01"), ("X-Team", "a")],
    )
    h = ClaudeExecutor().build(c, model="m", body={}, stream=True).headers
    assert lower(h)["anthropic-version"] == "2099-01-01" and lower(h)["x-team"] == "a"
    assert sum(1 for k in h if k.lower() == "anthropic-version") == 1


def test_claude_models_listing():
    call = ClaudeExecutor().build(
        cred("claude-api-key", "claude"), model="", body={}, stream=False, action="models"
    )
    assert (call.method, call.url, call.body) == ("GET", "https://api.anthropic.com/v1/models", b"")


# -- Gemini and Vertex ---------------------------------------------------------------------


def test_gemini_generate_stream_and_count_urls():
    c = cred("gemini-api-key", "gemini")
    ex = GeminiExecutor()
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro"
    body = {"contents": [], "model": "x", "session_id": "s", "tools": [], "generationConfig": {}}
    gen = ex.build(c, model="gemini-2.5-pro", body=body, stream=False)
    assert gen.url == base + ":generateContent"
    assert json.loads(gen.body) == {"contents": [], "tools": [], "generationConfig": {}}
    st = ex.build(c, model="gemini-2.5-pro", body=body, stream=True, client_headers=CLIENT_SECRETS)
    assert st.url == base + ":streamGenerateContent?alt=sse"
    assert lower(st.headers)["x-goog-api-key"] == KEY
    assert lower(st.headers)["accept-encoding"] == "identity"
    no_client_secret(st)
    cnt = ex.build(c, model="gemini-2.5-pro", body=body, stream=True, action="count_tokens")
    assert cnt.url == base + ":countTokens"
    assert json.loads(cnt.body) == {"contents": []}


def test_gemini_alt_and_custom_base():
    c = cred("gemini-api-key", "gemini", "https://gw.example/")
    call = GeminiExecutor().build(c, model="models/g", body={}, stream=True, alt="json")
    assert call.url == "https://gw.example/v1beta/models/g:streamGenerateContent?$alt=json"


def test_vertex_api_key_url_and_imagen_refusal():
    c = cred("vertex-api-key", "vertex")
    call = VertexExecutor().build(c, model="gemini-2.5-flash", body={"contents": []}, stream=True)
    assert call.url == (
        "https://aiplatform.googleapis.com/v1/publishers/google/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert lower(call.headers)["x-goog-api-key"] == KEY
    assert call.provider == "vertex"
    with pytest.raises(UnsupportedAction, match="predict"):
        VertexExecutor().build(c, model="imagen-4.0-generate-001", body={}, stream=False)


# -- Codex ---------------------------------------------------------------------------------


def test_codex_always_streams_and_fixes_the_body():
    c = cred("codex-api-key", "codex", "https://codex.example/backend/")
    body = {
        "input": [],
        "instructions": None,
        "previous_response_id": "r1",
        "prompt_cache_retention": "24h",
        "safety_identifier": "u",
        "stream_options": {"include_usage": True},
        "store": True,
        "prompt_cache_key": "cache-1",
    }
    call = CodexExecutor().build(
        c,
        model="gpt-5.4",
        body=body,
        stream=False,
        client_headers={**CLIENT_SECRETS, "Version": "0.99", "User-Agent": "codex_cli_rs/1"},
    )
    assert call.url == "https://codex.example/backend/responses" and call.stream
    sent = json.loads(call.body)
    assert sent["stream"] is True and sent["store"] is False and sent["instructions"] == ""
    for gone in ("previous_response_id", "prompt_cache_retention", "safety_identifier"):
        assert gone not in sent
    assert "stream_options" not in sent
    assert sent["tools"] == [{"type": "image_generation", "output_format": "png"}]
    h = lower(call.headers)
    assert h["authorization"] == f"Bearer {KEY}"
    assert h["accept"] == "text/event-stream" and h["accept-encoding"] == "identity"
    assert h["version"] == "0.99" and h["user-agent"] == "codex_cli_rs/1"
    assert h["session_id"] == "cache-1"
    no_client_secret(call)


def test_codex_defaults_and_no_image_tool_for_spark_or_when_off():
    c = cred("codex-api-key", "codex", "https://c.example")
    call = CodexExecutor().build(c, model="gpt-5.3-codex-spark", body={"input": []}, stream=True)
    sent = json.loads(call.body)
    assert "tools" not in sent and sent["instructions"] == ""
    h = lower(call.headers)
    assert "Mac OS" in h["user-agent"] and len(h["session_id"]) == 36
    assert "version" not in h
    off = cred("codex-api-key", "codex", "https://c.example", options=[("image-generation", False)])
    call = CodexExecutor().build(off, model="gpt-5.4", body={"tools": [{"type": "x"}]}, stream=True)
    assert json.loads(call.body)["tools"] == [{"type": "x"}]


def test_codex_needs_a_base_url_and_counts_locally():
    with pytest.raises(UpstreamConfigError, match="base-url"):
        CodexExecutor().build(cred("codex-api-key", "codex"), model="m", body={}, stream=True)
    with pytest.raises(UnsupportedAction):
        CodexExecutor().build(
            cred("codex-api-key", "codex", "https://c"),
            model="m",
            body={},
            stream=True,
            action="count_tokens",
        )


# -- OpenAI-compatible ---------------------------------------------------------------------


def test_openai_compat_stream_forces_usage_and_sets_headers():
    c = cred("openai-compatibility", "openrouter", "https://openrouter.ai/api/v1/")
    call = OpenAICompatExecutor().build(
        c,
        model="vendor/model",
        body={"messages": [], "stream_options": {"foo": 1}},
        stream=True,
        client_headers=CLIENT_SECRETS,
    )
    assert call.url == "https://openrouter.ai/api/v1/chat/completions"
    assert call.provider == "openrouter"
    sent = json.loads(call.body)
    assert sent["model"] == "vendor/model" and sent["stream"] is True
    assert sent["stream_options"] == {"foo": 1, "include_usage": True}
    h = lower(call.headers)
    assert h["authorization"] == f"Bearer {KEY}"
    assert h["user-agent"] == "cli-proxy-openai-compat"
    assert h["accept"] == "text/event-stream" and h["cache-control"] == "no-cache"
    no_client_secret(call)


def test_openai_compat_non_stream_and_keyless():
    c = cred("openai-compatibility", "local", "http://127.0.0.1:11434/v1", api_key="")
    call = OpenAICompatExecutor().build(
        c, model="llama", body={"messages": [], "stream_options": {}}, stream=False
    )
    sent = json.loads(call.body)
    assert sent["stream"] is False and "stream_options" not in sent
    assert "authorization" not in lower(call.headers)
    models = OpenAICompatExecutor().build(c, model="", body={}, stream=False, action="models")
    assert (models.method, models.url) == ("GET", "http://127.0.0.1:11434/v1/models")


def test_openai_responses_variant_posts_to_responses():
    c = cred("openai-compatibility", "p", "https://api.example/v1")
    call = OpenAIResponsesCompatExecutor().build(c, model="m", body={"input": []}, stream=True)
    assert call.url == "https://api.example/v1/responses"
    assert json.loads(call.body) == {"input": [], "model": "m", "stream": True}


def test_json_body_survives_lone_surrogates_and_keeps_unicode():
    c = cred("openai-compatibility", "p", "https://api.example/v1")
    call = OpenAICompatExecutor().build(
        c, model="m", body={"messages": [{"content": "héllo \ud800"}]}, stream=False
    )
    assert json.loads(call.body)["messages"][0]["content"] == "héllo \ud800"
    call = OpenAICompatExecutor().build(c, model="m", body={"x": "héllo"}, stream=False)
    assert "héllo".encode() in call.body


# -- openai-compatibility models configured text-only ---------------------------------------

TOOL_RESULT_BODY = {
    "messages": [
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function"}]},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": [
                {"type": "text", "text": "image inspected"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        },
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
    ]
}


def compat_with(*models):
    c = cred("openai-compatibility", "p", "https://api.example/v1")
    return dataclasses.replace(c, models=tuple(models))


@pytest.mark.parametrize("model", ["up-model", "client-alias"])
def test_text_only_model_gets_tool_result_images_as_a_marker(model):
    c = compat_with(ModelAlias("up-model", "client-alias", input_modalities=("text",)))
    call = OpenAICompatExecutor().build(c, model=model, body=TOOL_RESULT_BODY, stream=True)
    messages = json.loads(call.body)["messages"]
    assert messages[1]["content"] == "image inspected\n\n[image omitted: unsupported by upstream]"
    assert messages[1]["tool_call_id"] == "call_1"
    # only tool results are reshaped; the client's own turns pass as they are
    assert messages[2] == TOOL_RESULT_BODY["messages"][2]
    assert TOOL_RESULT_BODY["messages"][1]["content"][1]["type"] == "image_url"


@pytest.mark.parametrize(
    "modalities", [(), ("text", "image"), ("image",)], ids=["unsaid", "multimodal", "image"]
)
def test_models_that_read_images_keep_tool_result_parts(modalities):
    c = compat_with(ModelAlias("up-model", "up-model", input_modalities=modalities))
    call = OpenAICompatExecutor().build(c, model="up-model", body=TOOL_RESULT_BODY, stream=False)
    assert json.loads(call.body)["messages"][1] == TOOL_RESULT_BODY["messages"][1]
