"""An auth-dir holding one file of every type CLIProxyAPI writes.

Served: claude, codex, gemini (-> gemini-cli), vertex, kimi, antigravity. Still ignored,
with one log line naming the file and its type: xai.
"""

from __future__ import annotations

from twisted.internet import task

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.store import format_time
from cliproxy.upstream import executor_for
from tests.fakes.vertex import service_account_json
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file, write_file
from tests.oauth.test_authdir import logged  # noqa: F401  (fixture)

UNSUPPORTED = {"xai"}


def test_every_cliproxyapi_type_loads_or_is_named(tmp_path, logged):  # noqa: F811
    token = {"access_token": "at", "refresh_token": "rt", "expired": format_time(T0 + 3600)}
    write_file(tmp_path, "claude-a@example.com.json", claude_file("at", "rt", T0 + 3600))
    write_file(tmp_path, "codex-a@example.com-plus.json", codex_file("at", "rt", T0 + 3600))
    write_file(tmp_path, "gemini-a@example.com-p.json", gemini_file("at", "rt", T0 + 3600))
    vertex = {"type": "vertex", "service_account": service_account_json()[0]}
    write_file(tmp_path, "vertex-fake-project.json", vertex)
    write_file(tmp_path, "kimi-a.json", dict(token, type="kimi", device_id="d"))
    write_file(tmp_path, "antigravity-a@example.com.json", dict(token, type="antigravity"))
    write_file(tmp_path, "xai-a@example.com.json", dict(token, type="xai"))
    authdir = AuthDir(lambda: str(tmp_path), task.Clock(), OAuthEndpoints)
    authdir.scan()
    creds = authdir.credentials()
    assert sorted(c.provider for c in creds) == [
        "antigravity",
        "claude",
        "codex",
        "gemini-cli",
        "kimi",
        "vertex",
    ]
    for cred in creds:
        assert executor_for(cred).kinds  # each has its executor
    unserved = [line for line in logged if "types cliproxy does not serve" in line]
    assert len(unserved) == 1
    for kind in UNSUPPORTED:
        assert f"({kind})" in unserved[0]
