"""The four client SDKs on subscription accounts, end to end (issue 12's "Done when").

openai (Chat and Responses), anthropic and google-genai, unmodified, each run a tool
conversation, streamed and not, through cliproxy on a ChatGPT (Codex) account and on a
Claude (OAuth) account read from auth-dir token files. The fakes refuse what the real
services refuse: FakeCodex the fields the ChatGPT backend rejects (`max_output_tokens`,
`temperature`, a string `input`, no `store: false` or `instructions`, ...), FakeClaude a
subscription token without the OAuth beta or without Claude Code's system prompt, each with
the real error body. So a cell passes only if cliproxy sent what the real service takes.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet.threads import deferToThread

from tests.fakes import FakeClaude, FakeCodex
from tests.oauth.kit import T0, claude_file, codex_file, oauth_config, write_file
from tests.test_matrix import (
    CLIENTS,
    PLACEHOLDER_ARGS,
    RESULT,
    TOOL,
    UPSTREAM_PAIRS,
    upstream_wants_reasoning,
)

#: a subscription token as Anthropic issues them (the fake tells them by this prefix)
CLAUDE_TOKEN = "sk-ant-oat01-fake-subscription-token"
CODEX_TOKEN = "codex-access-token-fake"

ACCOUNTS = {
    # account: (fake, token file builder, file name, model, oauth_config keyword)
    "codex": (FakeCodex, codex_file, "codex-user@example.com-plus.json", "gpt-5.4", "codex_api"),
    "claude": (
        FakeClaude,
        claude_file,
        "claude-user@example.com.json",
        "claude-sonnet-4-5-20250929",
        "claude_api",
    ),
}
TOKENS = {"codex": CODEX_TOKEN, "claude": CLAUDE_TOKEN}

CELLS = [
    pytest.param((c, a, s), id=f"{c}-{a}-{'stream' if s else 'whole'}")
    for c in CLIENTS
    for a in ACCOUNTS
    for s in (False, True)
]


@pytest.fixture(params=CELLS)
def cell(request, start_fake, start_proxy, tmp_path):
    """(fake, SDK client, model, account kind, stream) for one client on one account."""
    client_kind, account, stream = request.param
    fake_cls, builder, name, model, where = ACCOUNTS[account]
    token = TOKENS[account]
    fake = start_fake(fake_cls, keys={token})
    write_file(tmp_path, name, builder(token, "rt-fake", T0 + 8 * 3600))
    proxy = start_proxy(oauth_config(tmp_path, **{where: fake}))
    proxy.clock.advance(T0)  # the token is fresh: no refresh call
    return fake, CLIENTS[client_kind](proxy.url), model, account, stream


@pytest_twisted.ensureDeferred
async def test_every_sdk_runs_a_tool_conversation_on_a_subscription_account(cell):
    fake, client, model, account, stream = cell
    first, second = await deferToThread(client.tool_turn, model, stream)

    assert [(c.name, c.args) for c in first.calls] == [(TOOL, PLACEHOLDER_ARGS)]
    assert [rec.status for rec in fake.requests] == [200, 200]  # nothing was refused
    pairs = UPSTREAM_PAIRS[account](fake.last.json)
    assert [(n, RESULT in r) for n, r in pairs] == [(TOOL, True)]
    assert second.calls == []
    assert second.text == f"hello from {fake.name}"


@pytest_twisted.ensureDeferred
async def test_every_sdk_gets_reasoning_on_a_subscription_account(cell):
    fake, client, model, account, stream = cell
    ans = await deferToThread(client.reasoning_turn, model, stream)

    assert [rec.status for rec in fake.requests] == [200]
    assert upstream_wants_reasoning(account, fake.last.json)
    assert ans.reasoning == fake.reasoning_text
    assert ans.text == f"hello from {fake.name}"


# -- the fakes refuse what the real services refuse -------------------------------------------


@pytest_twisted.ensureDeferred
async def test_fake_claude_refuses_a_subscription_token_outside_claude_code(start_fake):
    claude = start_fake(FakeClaude)
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"Authorization": f"Bearer {CLAUDE_TOKEN}", "content-type": "application/json"}

    no_beta = await treq.post(
        claude.url + "/v1/messages", json.dumps(body).encode(), headers=headers
    )
    assert no_beta.code == 401
    assert (await no_beta.json())["error"] == {
        "type": "authentication_error",
        "message": "OAuth authentication is currently not supported.",
    }
    headers["anthropic-beta"] = "oauth-2025-04-20"
    other = await treq.post(claude.url + "/v1/messages", json.dumps(body).encode(), headers=headers)
    assert other.code == 400
    assert "only authorized for use with Claude Code" in (await other.json())["error"]["message"]
    body["system"] = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}
    ]
    ok = await treq.post(claude.url + "/v1/messages", json.dumps(body).encode(), headers=headers)
    assert ok.code == 200
    await ok.content()


@pytest.mark.parametrize(
    "change, detail",
    [
        ({"max_output_tokens": 100}, "Unsupported parameter: max_output_tokens"),
        ({"temperature": 0.2}, "Unsupported parameter: temperature"),
        ({"input": "hi"}, "Input must be a list"),
        ({"store": True}, "Store must be set to false"),
        ({"instructions": None}, "Instructions are required"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_fake_codex_refuses_what_the_chatgpt_backend_refuses(start_fake, change, detail):
    codex = start_fake(FakeCodex)
    accepted = dict(model="gpt-5.4", stream=True, store=False, instructions="x", input=[])
    body = {k: v for k, v in {**accepted, **change}.items() if v is not None}
    resp = await treq.post(
        codex.url + "/backend-api/codex/responses",
        json.dumps(body).encode(),
        headers={"Authorization": "Bearer t", "content-type": "application/json"},
    )
    assert resp.code == 400
    assert await resp.json() == {"detail": detail}
