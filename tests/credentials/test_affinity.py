"""Session affinity: one conversation stays on one credential across round-robin."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq

from cliproxy.credentials.affinity import session_key
from tests.fakes import FakeClaude, claude_error_reply
from tests.serving_kit import CLIENT_KEY, config_text

KEYS = ("sk-ant-a", "sk-ant-b", "sk-ant-c")
SESSION = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_session_key_sources_in_cliproxyapis_order():
    uid = f"user_{'a' * 64}_account_x_session_{SESSION}"
    assert session_key({}, {"metadata": {"user_id": uid}}) == f"claude:{SESSION}"
    assert session_key({}, {"metadata": {"user_id": json.dumps({"session_id": "s1"})}}) == (
        "claude:s1"
    )
    assert session_key({"session_id": "c1"}, {}) == "codex:c1"
    assert session_key({"x-amp-thread-id": "T-1"}, {}) == "amp:T-1"
    assert session_key({}, {"prompt_cache_key": "pck-1"}) == "pck:pck-1"
    assert session_key({"X-Claude-Code-Session-Id": "h"}, {"prompt_cache_key": "p"}) == "claude:h"
    chat = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}
    later = dict(chat, messages=chat["messages"] + [{"role": "assistant", "content": "a"}])
    assert session_key({}, chat).startswith("msg:") and session_key({}, chat) == session_key(
        {}, later
    )
    assert session_key({}, {}) == ""


def test_a_huge_or_control_laden_session_id_is_ignored():
    assert session_key({"X-Amp-Thread-Id": "T" * 10_240}, {}) == ""
    assert session_key({"Session_id": "a\x00b"}, {"conversation_id": "c"}) == "conv:c"


def _config(claude, affinity=True, strategy="round-robin", priorities=(0, 0, 0)):
    keys = "\n".join(
        f"  - api-key: {k}\n    base-url: {claude.url}\n    priority: {p}"
        for k, p in zip(KEYS, priorities, strict=True)
    )
    return config_text(
        f"routing:\n  strategy: {strategy}\n  session-affinity: {str(affinity).lower()}\n",
        f"claude-api-key:\n{keys}\n",
    )


def _request(kind: str, turn: int):
    messages = [{"role": "user", "content": f"turn {turn}"}]
    if kind == "claude":
        uid = f"user_{'b' * 64}_account_x_session_{SESSION}"
        body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": messages}
        return "/v1/messages", dict(body, metadata={"user_id": uid}), {}
    body = {"model": "claude-sonnet-4-6", "messages": messages}
    if kind == "amp-route":  # what Amp itself sends: its provider route and thread id
        body = dict(body, max_tokens=50)
        return "/api/provider/anthropic/v1/messages", body, {"X-Amp-Thread-Id": "T-amp-2"}
    if kind == "responses":  # Codex's own body key, on the Responses API
        body = {"model": "claude-sonnet-4-6", "input": f"turn {turn}", "prompt_cache_key": "pck-9"}
        return "/v1/responses", body, {}
    if kind == "codex":
        return "/v1/chat/completions", body, {"Session_id": "codex-session-1"}
    return "/v1/chat/completions", body, {"X-Amp-Thread-Id": "T-amp-thread-1"}


async def _send(proxy, kind, turn):
    path, body, headers = _request(kind, turn)
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json", **headers}
    response = await treq.post(proxy.url + path, json.dumps(body).encode(), headers=h)
    content = await response.content()
    return response.code, content


@pytest.mark.parametrize("kind", ["claude", "codex", "responses", "amp", "amp-route"])
@pytest_twisted.ensureDeferred
async def test_one_conversation_stays_on_one_credential_and_moves_once_when_it_cools(
    start_fake, start_proxy, kind
):
    claude = start_fake(FakeClaude, keys=set(KEYS))
    proxy = start_proxy(_config(claude))
    for turn in range(20):
        code, raw = await _send(proxy, kind, turn)
        assert code == 200, raw
    used = [r.key for r in claude.requests]
    assert len(set(used)) == 1, used
    bound = used[0]
    claude.script("POST", "/v1/messages", claude_error_reply(429, "rate limited"), key=bound)
    for turn in range(20, 30):
        code, raw = await _send(proxy, kind, turn)
        assert code == 200, raw
    after = [r.key for r in claude.requests[21:]]
    assert bound not in after and len(set(after)) == 1, after


@pytest_twisted.ensureDeferred
async def test_without_affinity_round_robin_spreads_the_conversation(start_fake, start_proxy):
    claude = start_fake(FakeClaude, keys=set(KEYS))
    proxy = start_proxy(_config(claude, affinity=False))
    for turn in range(6):
        assert (await _send(proxy, "claude", turn))[0] == 200
    assert {r.key for r in claude.requests} == set(KEYS)


@pytest.mark.parametrize(
    "strategy, priorities, first, moved",
    [
        ("fill-first", (0, 0, 0), "sk-ant-a", "sk-ant-b"),
        ("round-robin", (0, 5, 5), "sk-ant-b", "sk-ant-c"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_affinity_with_fill_first_and_priorities(
    start_fake, start_proxy, strategy, priorities, first, moved
):
    claude = start_fake(FakeClaude, keys=set(KEYS))
    proxy = start_proxy(_config(claude, strategy=strategy, priorities=priorities))
    for turn in range(5):
        assert (await _send(proxy, "amp", turn))[0] == 200
    assert {r.key for r in claude.requests} == {first}
    claude.script("POST", "/v1/messages", claude_error_reply(429, "rate limited"), key=first)
    for turn in range(5, 10):
        assert (await _send(proxy, "amp", turn))[0] == 200
    assert {r.key for r in claude.requests[6:]} == {moved}
