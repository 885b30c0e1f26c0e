"""An auth-dir holding one file of every type CLIProxyAPI writes (its `sdk/auth` and
`internal/auth`: claude, codex, gemini, vertex, antigravity, kimi, xai) loads, and each
credential answers a request through its own executor against a strict fake.

Not served: `qwen` and `iflow` files from CLIProxyAPI versions before it dropped those
providers (and any other unknown type); they are named in one log line and ignored.
"""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import task

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.store import format_time
from cliproxy.upstream import executor_for
from tests.fakes import FakeClaude, FakeCloudCode, FakeCodex
from tests.fakes.antigravity import FakeAntigravity
from tests.fakes.kimi import FakeKimi
from tests.fakes.vertex import FakeGoogleToken, FakeVertex, service_account_json
from tests.fakes.xai import FakeGrokChatProxy
from tests.oauth.kit import T0, claude_file, codex_file, config_text, gemini_file, write_file
from tests.oauth.test_authdir import logged  # noqa: F401  (fixture)
from tests.oauth.test_serving_oauth import chat, post
from tests.upstream.test_antigravity import antigravity_file

UNSUPPORTED = {"qwen", "iflow"}
LATER = T0 + 10 * 3600
#: provider -> (a model of its catalog section, the client request path)
MODELS = {
    "claude": "claude-sonnet-4-5-20250929",
    "codex": "gpt-5.4",
    "gemini-cli": "gemini-2.5-pro",
    "vertex": "gemini-2.5-flash",
    "antigravity": "gemini-3-flash",
    "kimi": "kimi-k2",
    "xai": "grok-4.3",
}


def write_every_type(directory, vertex_record):
    """One file per type, each with its own model prefix (`p-<provider>`), so a request
    names the credential that must answer it."""
    token = {"access_token": "at", "refresh_token": "rt", "expired": format_time(LATER)}
    files = {
        "claude-a@example.com.json": ("claude", claude_file("at", "rt", LATER)),
        "codex-a@example.com-plus.json": ("codex", codex_file("at", "rt", LATER)),
        "gemini-a@example.com-p.json": ("gemini-cli", gemini_file("at", "rt", LATER)),
        "vertex-fake-project.json": ("vertex", vertex_record),
        "kimi-a.json": ("kimi", dict(token, type="kimi", device_id="d")),
        "antigravity-a@example.com.json": ("antigravity", antigravity_file("at", "rt", LATER)),
        "xai-a@example.com.json": ("xai", dict(token, type="xai", auth_kind="oauth")),
    }
    for name, (provider, record) in files.items():
        write_file(directory, name, dict(record, prefix=f"p-{provider}"))
    write_file(directory, "qwen-a@example.com.json", dict(token, type="qwen"))
    write_file(directory, "iflow-a@example.com.json", dict(token, type="iflow"))


def test_every_cliproxyapi_type_loads_or_is_named(tmp_path, logged):  # noqa: F811
    write_every_type(tmp_path, {"type": "vertex", "service_account": service_account_json()[0]})
    authdir = AuthDir(lambda: str(tmp_path), task.Clock(), OAuthEndpoints)
    authdir.scan()
    creds = authdir.credentials()
    assert sorted(c.provider for c in creds) == sorted(MODELS)
    for cred in creds:
        assert cred.provider in executor_for(cred).provider  # its own executor
    unserved = [line for line in logged if "types cliproxy does not serve" in line]
    assert len(unserved) == 1
    for kind in UNSUPPORTED:
        assert f"({kind})" in unserved[0]


@pytest_twisted.ensureDeferred
async def test_each_type_answers_through_its_executor(start_fake, start_proxy, tmp_path):
    sa, public = service_account_json()
    holder: list = []
    google = start_fake(FakeGoogleToken, now=lambda: holder[0].clock.seconds())
    google.trust(sa["client_email"], public)
    fakes = {
        "claude": start_fake(FakeClaude),
        "codex": start_fake(FakeCodex),
        "gemini-cli": start_fake(FakeCloudCode),
        "vertex": start_fake(FakeVertex, project=sa["project_id"]),
        "antigravity": start_fake(FakeAntigravity),
        "kimi": start_fake(FakeKimi),
        "xai": start_fake(FakeGrokChatProxy),
    }
    fakes["vertex"].keys = google.access_tokens
    for name, fake in fakes.items():
        if name != "vertex":
            fake.keys = {"at"}
    vertex = {
        "type": "vertex",
        "service_account": sa,
        "project_id": sa["project_id"],
        "location": "us-central1",
        "base_url": fakes["vertex"].url,
        "token_uri": google.url + "/token",
    }
    write_every_type(tmp_path, vertex)
    ep = {k: f.url for k, f in fakes.items()}
    endpoints = (
        "oauth-endpoints:\n"
        f"  claude: {{api-url: '{ep['claude']}'}}\n"
        f"  codex: {{api-url: '{ep['codex']}/backend-api/codex'}}\n"
        f"  gemini: {{code-assist-url: '{ep['gemini-cli']}'}}\n"
        f"  kimi: {{api-url: '{ep['kimi']}'}}\n"
        f"  antigravity: {{api-url: '{ep['antigravity']}'}}\n"
        f"  xai: {{api-url: '{ep['xai']}/v1'}}\n"
    )
    proxy = start_proxy(config_text(f"auth-dir: {tmp_path}\n", endpoints))
    holder.append(proxy)
    proxy.clock.advance(T0)
    for provider, model in MODELS.items():
        code, raw = await post(proxy, "/v1/chat/completions", chat(f"p-{provider}/{model}"))
        assert code == 200, (provider, raw)
        answer = json.loads(raw)["choices"][0]["message"]["content"]
        assert answer == f"hello from {fakes[provider].name}", provider
        assert len(fakes[provider].requests) >= 1, provider
