"""`claude-header-defaults` and `codex-header-defaults` reach the provider (core.md §2.5, §2.6):
they replace the built-in fingerprint; a client's own value still wins where the executor
keeps it, and a credential's `headers:` win over both."""

from __future__ import annotations

import json

import pytest_twisted
import treq

from tests.fakes import FakeClaude, FakeCodex, FakeOAuth
from tests.oauth.kit import T0, claude_file, codex_file, oauth_config, write_file
from tests.serving_kit import CLIENT_KEY, config_text

CLAUDE_DEFAULTS = (
    "claude-header-defaults:\n"
    "  user-agent: claude-cli/9.9.9 (external, cli)\n"
    "  package-version: 0.99.0\n"
    "  os: Linux\n"
    "  timeout: '900'\n"
)
CODEX_DEFAULTS = (
    "codex-header-defaults:\n  user-agent: my-codex/1.0\n  beta-features: multi_agent\n"
)


async def post(url, model, headers=None):
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    h.update(headers or {})
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    response = await treq.post(url + "/v1/chat/completions", json.dumps(body).encode(), headers=h)
    return response.code, await response.content()


def claude_key_config(claude, extra: str = "", entry_headers: str = "") -> str:
    return config_text(
        f"claude-api-key:\n  - api-key: sk-ant-test-1\n    base-url: {claude.url}\n"
        f"    models: [{{name: claude-fake-1, alias: claude-fake}}]\n{entry_headers}",
        extra,
    )


@pytest_twisted.ensureDeferred
async def test_claude_key_sends_the_configured_fingerprint_unless_the_client_has_its_own(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude, keys={"sk-ant-test-1"})
    proxy = start_proxy(claude_key_config(claude, CLAUDE_DEFAULTS))
    code, raw = await post(proxy.url, "claude-fake")
    assert code == 200, raw
    rec = claude.last
    assert rec.header("user-agent") == "claude-cli/9.9.9 (external, cli)"
    assert rec.header("x-stainless-package-version") == "0.99.0"
    assert rec.header("x-stainless-os") == "Linux"
    assert rec.header("x-stainless-timeout") == "900"
    assert rec.header("x-stainless-runtime-version") == "v24.3.0"  # not configured: built in
    code, _ = await post(proxy.url, "claude-fake", {"User-Agent": "my-sdk/1.0"})
    assert code == 200
    assert claude.last.header("user-agent") == "my-sdk/1.0"  # an API key keeps the client's
    assert claude.last.header("x-stainless-os") == "Linux"


@pytest_twisted.ensureDeferred
async def test_a_credentials_own_headers_beat_the_defaults(start_fake, start_proxy):
    claude = start_fake(FakeClaude, keys={"sk-ant-test-1"})
    own = "    headers: {User-Agent: entry-agent/2}\n"
    proxy = start_proxy(claude_key_config(claude, CLAUDE_DEFAULTS, own))
    assert (await post(proxy.url, "claude-fake"))[0] == 200
    assert claude.last.header("user-agent") == "entry-agent/2"
    assert claude.last.header("x-stainless-package-version") == "0.99.0"


def start_oauth(provider, start_fake, start_proxy, tmp_path, extra):
    oauth = start_fake(FakeOAuth, flavor=provider)
    upstream = start_fake(FakeClaude if provider == "claude" else FakeCodex)
    oauth.access_tokens.add("at-1")
    upstream.keys = oauth.access_tokens
    if provider == "claude":
        write_file(tmp_path, "claude-u@example.com.json", claude_file("at-1", "rt", T0 + 3600))
        fakes = {"claude_oauth": oauth, "claude_api": upstream}
    else:
        write_file(tmp_path, "codex-u@example.com.json", codex_file("at-1", "rt", T0 + 86400))
        fakes = {"codex_oauth": oauth, "codex_api": upstream}
    proxy = start_proxy(oauth_config(tmp_path, extra, **fakes))
    proxy.clock.advance(T0)
    return upstream, proxy


@pytest_twisted.ensureDeferred
async def test_claude_account_replaces_another_clients_identity_with_the_defaults(
    start_fake, start_proxy, tmp_path
):
    claude, proxy = start_oauth("claude", start_fake, start_proxy, tmp_path, CLAUDE_DEFAULTS)
    model = "claude-sonnet-4-5-20250929"
    code, raw = await post(proxy.url, model, {"User-Agent": "OpenAI/Python 1.0"})
    assert code == 200, raw
    assert claude.last.header("user-agent") == "claude-cli/9.9.9 (external, cli)"
    assert claude.last.header("x-stainless-os") == "Linux"
    # Claude Code itself keeps its own values
    code, _ = await post(
        proxy.url,
        model,
        {"User-Agent": "claude-cli/2.1.70 (external, cli)", "X-Stainless-Os": "MacOS"},
    )
    assert code == 200
    assert claude.last.header("user-agent") == "claude-cli/2.1.70 (external, cli)"
    assert claude.last.header("x-stainless-os") == "MacOS"


@pytest_twisted.ensureDeferred
async def test_codex_account_uses_the_configured_user_agent_and_beta_features(
    start_fake, start_proxy, tmp_path
):
    codex, proxy = start_oauth("codex", start_fake, start_proxy, tmp_path, CODEX_DEFAULTS)
    code, raw = await post(proxy.url, "gpt-5.4")
    assert code == 200, raw
    assert codex.last.header("user-agent") == "my-codex/1.0"
    assert codex.last.header("x-codex-beta-features") == "multi_agent"
    code, _ = await post(proxy.url, "gpt-5.4", {"User-Agent": "codex_cli_rs/0.120.0"})
    assert code == 200
    assert codex.last.header("user-agent") == "codex_cli_rs/0.120.0"


@pytest_twisted.ensureDeferred
async def test_codex_key_entries_ignore_codex_header_defaults(start_fake, start_proxy):
    codex = start_fake(FakeCodex, keys={"sk-codex-test-1"})
    proxy = start_proxy(
        config_text(
            f"codex-api-key:\n  - api-key: sk-codex-test-1\n"
            f"    base-url: {codex.url}/backend-api/codex\n"
            "    models: [{name: gpt-codex-fake, alias: gpt-codex-fake}]\n",
            CODEX_DEFAULTS,
        )
    )
    assert (await post(proxy.url, "gpt-codex-fake"))[0] == 200
    assert codex.last.header("user-agent").startswith("codex-tui/")
    assert codex.last.header("x-codex-beta-features") is None


@pytest_twisted.ensureDeferred
async def test_dollar_header_values_copy_the_named_client_header(start_fake, start_proxy):
    claude = start_fake(FakeClaude, keys={"sk-ant-test-1"})
    own = "    headers: {X-Tenant: $X-Client-Tenant, X-Missing: $X-Nothing, X-Key: $Authorization}"
    own = own + "\n"
    proxy = start_proxy(claude_key_config(claude, "", own))
    code, raw = await post(proxy.url, "claude-fake", {"X-Client-Tenant": "acme"})
    assert code == 200, raw
    assert claude.last.header("x-tenant") == "acme"
    assert claude.last.header("x-missing") is None  # no such client header: not sent
    assert claude.last.header("x-key") is None  # a client's credential is never copied


@pytest_twisted.ensureDeferred
async def test_an_oauth_token_in_a_key_entry_goes_as_bearer_with_the_oauth_beta(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude, keys={"sk-ant-oat01-test"})
    text = claude_key_config(claude).replace("sk-ant-test-1", "sk-ant-oat01-test")
    proxy = start_proxy(text)
    code, raw = await post(proxy.url, "claude-fake")
    assert code == 200, raw
    assert claude.last.header("authorization") == "Bearer sk-ant-oat01-test"
    assert claude.last.header("x-api-key") is None
    assert "oauth-2025-04-20" in claude.last.header("anthropic-beta").split(",")


@pytest_twisted.ensureDeferred
async def test_codex_responses_lite_gets_no_image_tool_and_no_parallel_calls(
    start_fake, start_proxy
):
    codex = start_fake(FakeCodex, keys={"sk-codex-test-1"})
    proxy = start_proxy(
        config_text(
            f"codex-api-key:\n  - api-key: sk-codex-test-1\n"
            f"    base-url: {codex.url}/backend-api/codex\n"
            "    models: [{name: gpt-codex-fake, alias: gpt-codex-fake}]\n"
        )
    )
    assert (await post(proxy.url, "gpt-codex-fake"))[0] == 200
    assert [t["type"] for t in codex.last.json["tools"]] == ["image_generation"]
    lite = {"X-OpenAI-Internal-Codex-Responses-Lite": "true"}
    code, raw = await post(proxy.url, "gpt-codex-fake", lite)
    assert code == 200, raw
    assert "tools" not in codex.last.json
    assert codex.last.json["parallel_tool_calls"] is False
    assert codex.last.header("x-openai-internal-codex-responses-lite") == "true"
