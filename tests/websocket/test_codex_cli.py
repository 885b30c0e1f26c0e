"""The real Codex CLI through cliproxy's Responses WebSocket mode (runs when `codex` is on PATH).

The CLI is pointed at cliproxy with a model provider that says `supports_websockets = true`;
cliproxy serves it over HTTP SSE from a fake Codex backend (a `codex-api-key`), or from a
fake Anthropic API on a Claude subscription account (the fake refuses anything Anthropic
refuses for such a token). The turn must come back over the
WebSocket: no "Falling back from WebSockets to HTTPS transport" warning, and the upgrade in
cliproxy's access log. CI does not install the CLI (`npm install @openai/codex` does), so
this is skipped there.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher

from tests.fakes import FakeClaude, FakeCodex
from tests.oauth.kit import T0, claude_file, oauth_config, write_file
from tests.serving_kit import CLIENT_KEY, providers
from tests.test_matrix import claude_pairs, responses_pairs

CODEX = shutil.which("codex")
pytestmark = pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not on PATH")

FALLBACK = "Falling back from WebSockets"
PAIRS = {"codex": responses_pairs, "claude": claude_pairs}


def codex_home(path, url: str, model: str) -> dict[str, str]:
    home = path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "cliproxy"\n\n'
        "[model_providers.cliproxy]\n"
        'name = "cliproxy"\n'
        f'base_url = "{url}/v1"\n'
        'env_key = "CLIPROXY_KEY"\n'
        'wire_api = "responses"\n'
        "supports_websockets = true\n"
    )
    return {**os.environ, "CODEX_HOME": str(home), "CLIPROXY_KEY": CLIENT_KEY}


def start_account(kind: str, start_fake, start_proxy, tmp_path):
    """A fake backend and cliproxy serving it: a Codex key, or a Claude subscription account."""
    if kind == "codex":
        fake = start_fake(FakeCodex)
        return fake, start_proxy(providers(codex=fake)), "gpt-codex-fake"
    token = "sk-ant-oat01-fake-subscription-token"  # FakeClaude applies the OAuth rules
    fake = start_fake(FakeClaude, keys={token})
    write_file(tmp_path, "claude-user@example.com.json", claude_file(token, "rt", T0 + 8 * 3600))
    proxy = start_proxy(oauth_config(tmp_path, claude_api=fake))
    proxy.clock.advance(T0)
    return fake, proxy, "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize("account", ["codex", "claude"])
@pytest_twisted.ensureDeferred
async def test_the_codex_cli_runs_a_tool_turn_over_the_websocket(
    start_fake, start_proxy, tmp_path, account
):
    fake, proxy, model = start_account(account, start_fake, start_proxy, tmp_path)
    fake.text = "done over the socket"
    access: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "cliproxy.access":
            access.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        run = await deferToThread(
            subprocess.run,
            [CODEX, "exec", "--skip-git-repo-check", "use the tool please"],
            cwd=tmp_path,
            env=codex_home(tmp_path, proxy.url, model),
            capture_output=True,
            text=True,
            timeout=240,
            stdin=subprocess.DEVNULL,
        )
    finally:
        globalLogPublisher.removeObserver(observe)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "done over the socket" in run.stdout
    assert FALLBACK not in run.stderr
    upgrades = [e for e in access if e.get("status") == 101 and e.get("path") == "/v1/responses"]
    assert upgrades
    posts = [e for e in access if e.get("method") == "POST"]
    assert posts == []  # every turn came over the WebSocket
    assert [rec.status for rec in fake.requests] == [200, 200]  # the call, then the answer
    # the tool turn: the call and its output reached the backend paired, in one transcript
    assert len(PAIRS[account](fake.last.json)) == 1
