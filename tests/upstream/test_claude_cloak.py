"""Per-entry `cloak` on claude-api-key entries (core.md §2.7): modes and strict-mode."""

from __future__ import annotations

import json

from cliproxy.credentials.model import Credential
from cliproxy.upstream import executor_for
from cliproxy.upstream.claude_cloak import CLAUDE_CODE_SYSTEM

BODY = {
    "max_tokens": 10,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "hi"}],
}


def key(cloak=None):
    options = (("cloak", cloak),) if cloak is not None else ()
    return Credential(
        id="claude-api-key:1",
        kind="claude-api-key",
        provider="claude",
        api_key="sk-ant-api-1",
        base_url="https://api.anthropic.com",
        options=options,
    )


def sent(cred, headers=None):
    call = executor_for(cred).build(
        cred, model="claude-sonnet-4-6", body=BODY, stream=False, client_headers=headers or {}
    )
    return json.loads(call.body)


def test_api_key_without_cloak_keeps_the_clients_system():
    assert sent(key())["system"] == "Be brief."


def test_cloak_auto_skips_claude_code_and_cloaks_others():
    cred = key({"mode": "auto"})
    assert sent(cred, {"User-Agent": "claude-cli/2.1.0"})["system"] == "Be brief."
    body = sent(cred, {"User-Agent": "curl/8"})
    assert body["system"][0]["text"] == CLAUDE_CODE_SYSTEM
    first = body["messages"][0]["content"][0]["text"]
    assert first == "<system-reminder>\nBe brief.\n</system-reminder>"


def test_cloak_always_and_strict_mode_drops_the_clients_system():
    body = sent(key({"mode": "always", "strict-mode": True}), {"User-Agent": "claude-cli/2"})
    assert body["system"][0]["text"] == CLAUDE_CODE_SYSTEM
    assert "Be brief." not in json.dumps(body)


def test_cloak_never():
    assert sent(key({"mode": "never"}))["system"] == "Be brief."
