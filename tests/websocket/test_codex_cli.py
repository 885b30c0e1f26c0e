"""The real Codex CLI through cliproxy's Responses WebSocket mode (runs when `codex` is on PATH).

The CLI is pointed at cliproxy with a model provider that says `supports_websockets = true`;
cliproxy serves it from a fake Codex backend over HTTP SSE. The turn must come back over the
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

from tests.fakes import FakeCodex
from tests.serving_kit import CLIENT_KEY, providers

CODEX = shutil.which("codex")
pytestmark = pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not on PATH")

FALLBACK = "Falling back from WebSockets"


def codex_home(path, url: str) -> dict[str, str]:
    home = path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "gpt-codex-fake"\n'
        'model_provider = "cliproxy"\n\n'
        "[model_providers.cliproxy]\n"
        'name = "cliproxy"\n'
        f'base_url = "{url}/v1"\n'
        'env_key = "CLIPROXY_KEY"\n'
        'wire_api = "responses"\n'
        "supports_websockets = true\n"
    )
    return {**os.environ, "CODEX_HOME": str(home), "CLIPROXY_KEY": CLIENT_KEY}


@pytest_twisted.ensureDeferred
async def test_the_codex_cli_runs_a_tool_turn_over_the_websocket(start_fake, start_proxy, tmp_path):
    codex = start_fake(FakeCodex)
    codex.text = "done over the socket"
    proxy = start_proxy(providers(codex=codex))
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
            env=codex_home(tmp_path, proxy.url),
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
    # the tool turn: the call and its output reached the backend paired, in one transcript
    kinds = [(i.get("type"), i.get("call_id")) for i in codex.last.json["input"]]
    calls = [c for t, c in kinds if t == "function_call"]
    outputs = [c for t, c in kinds if t == "function_call_output"]
    assert calls and calls == outputs
