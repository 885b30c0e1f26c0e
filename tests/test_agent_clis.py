"""Claude Code and the Gemini CLI through cliproxy on subscription accounts (when on PATH).

Issue 12's "Done when": Claude Code on a ChatGPT (Codex) account, and the Gemini CLI on a
Claude and on a Codex account, each running a tool turn against fakes that refuse what the
real services refuse (FakeCodex: the ChatGPT backend's body rules; FakeClaude: a
subscription token outside Claude Code). Claude Code on the Claude account is here too: its
own system prompt must reach Anthropic as Claude Code's. CI installs no npm packages, so
these are skipped there (`npm install @anthropic-ai/claude-code @google/gemini-cli`).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.fakes import FakeClaude, FakeCodex
from tests.oauth.kit import T0, claude_file, codex_file, oauth_config, write_file
from tests.serving_kit import CLIENT_KEY

CLAUDE_TOKEN = "sk-ant-oat01-fake-subscription-token"
CODEX_TOKEN = "codex-access-token-fake"
MODELS = {"codex": "gpt-5.4", "claude": "claude-sonnet-4-5-20250929"}


def start_accounts(start_fake, start_proxy, tmp_path):
    """cliproxy with a Codex and a Claude subscription account, each on its fake."""
    codex = start_fake(FakeCodex, keys={CODEX_TOKEN})
    claude = start_fake(FakeClaude, keys={CLAUDE_TOKEN})
    auth = tmp_path / "auth"
    auth.mkdir()
    write_file(
        auth, "codex-user@example.com-plus.json", codex_file(CODEX_TOKEN, "rt", T0 + 8 * 3600)
    )
    write_file(auth, "claude-user@example.com.json", claude_file(CLAUDE_TOKEN, "rt", T0 + 8 * 3600))
    proxy = start_proxy(oauth_config(auth, claude_api=claude, codex_api=codex))
    proxy.clock.advance(T0)
    return {"codex": codex, "claude": claude}, proxy


def claude_code(url: str, home, model: str) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": CLIENT_KEY,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    return [shutil.which("claude") or "claude", "-p", "use the tool please", "--model", model], env


def gemini_cli(url: str, home, model: str) -> tuple[list[str], dict[str, str]]:
    settings = home / ".gemini"
    settings.mkdir(parents=True)
    (settings / "settings.json").write_text(
        '{"security":{"auth":{"selectedType":"gemini-api-key"}}}'
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "GEMINI_API_KEY": CLIENT_KEY,
        "GOOGLE_GEMINI_BASE_URL": url,
        "GEMINI_CLI_NO_RELAUNCH": "true",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    return [shutil.which("gemini") or "gemini", "-p", "use the tool please", "-m", model], env


CLIS = {"claude": claude_code, "gemini": gemini_cli}
CELLS = [
    pytest.param(
        cli,
        account,
        marks=pytest.mark.skipif(shutil.which(cli) is None, reason=f"{cli} is not on PATH"),
        id=f"{cli}-on-{account}",
    )
    for cli in CLIS
    for account in MODELS
]


@pytest.mark.parametrize("cli,account", CELLS)
@pytest_twisted.ensureDeferred
async def test_an_agent_cli_runs_a_tool_turn_on_a_subscription_account(
    start_fake, start_proxy, tmp_path, cli, account
):
    fakes, proxy = start_accounts(start_fake, start_proxy, tmp_path)
    fake = fakes[account]
    fake.text = f"answered by the {account} account"
    argv, env = CLIS[cli](proxy.url, tmp_path / "home", MODELS[account])
    (tmp_path / "work").mkdir()
    run = await deferToThread(
        subprocess.run,
        argv,
        cwd=tmp_path / "work",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    assert f"answered by the {account} account" in run.stdout
    statuses = [rec.status for rec in fake.requests]
    assert len(statuses) >= 2 and set(statuses) == {200}  # a tool call, then the answer
