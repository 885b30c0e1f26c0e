"""The auth-dir: CLIProxyAPI's files as they are, damaged files skipped, live and loop-free."""

from __future__ import annotations

import os

import pytest
from twisted.internet import task
from twisted.logger import formatEvent, globalLogPublisher

from cliproxy.config import OAuthEndpoints, parse_config
from cliproxy.credentials.authdir import AuthDir, AuthDirWatcher, holder_of, usable
from cliproxy.registry import ModelRegistry
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file, write_file

CLAUDE = "claude-user@example.com.json"
CODEX = "codex-user@example.com-plus.json"
GEMINI = "gemini-user@example.com-fake-project-123.json"


@pytest.fixture
def logged():
    lines: list[str] = []

    def observe(event):
        if event.get("log_namespace", "").startswith("cliproxy"):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def make(tmp_path, endpoints=None):
    clock = task.Clock()
    clock.advance(T0)
    return AuthDir(lambda: str(tmp_path), clock, lambda: endpoints or OAuthEndpoints())


def test_cliproxyapi_files_become_credentials(tmp_path):
    write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    write_file(tmp_path, CODEX, codex_file("at-2", "rt-2", T0 + 3600))
    write_file(tmp_path, GEMINI, gemini_file("at-3", "rt-3", T0 + 3600))
    authdir = make(tmp_path)
    assert authdir.scan() is True
    creds = {c.id: c for c in authdir.credentials()}
    assert sorted(creds) == [CLAUDE, CODEX, GEMINI]
    claude, codex, gemini = creds[CLAUDE], creds[CODEX], creds[GEMINI]
    assert (claude.provider, claude.kind, claude.base_url) == (
        "claude",
        "oauth",
        "https://api.anthropic.com",
    )
    assert claude.api_key == "" and claude.label == CLAUDE  # no token in ids or labels
    assert (codex.provider, codex.base_url) == ("codex", "https://chatgpt.com/backend-api/codex")
    assert codex.option("plan_type") == "plus" and codex.option("account_id") == "acct-fake-0001"
    assert (gemini.provider, gemini.base_url) == (
        "gemini-cli",
        "https://cloudcode-pa.googleapis.com",
    )
    assert gemini.option("project_id") == "fake-project-123"
    holder = holder_of(gemini)
    assert holder.access_token == "at-3" and holder.refresh_token == "rt-3"
    assert holder.expiry == pytest.approx(T0 + 3600.123456)
    assert [a.status for a in authdir.accounts()] == ["ok", "ok", "ok"]


def test_per_file_options_are_honoured(tmp_path):
    record = claude_file("at-1", "rt-1", T0 + 3600)
    record.update(
        prefix="/work/",
        proxy_url="none",
        priority="7",
        disabled=False,
        excluded_models=["*opus*"],
        headers={"X-Team": "blue"},
        disable_cooling=True,
        request_retry=2,
        note="personal",
    )
    write_file(tmp_path, CLAUDE, record)
    authdir = make(tmp_path)
    authdir.scan()
    [cred] = authdir.credentials()
    assert (cred.prefix, cred.proxy_url, cred.priority) == ("work", "direct", 7)
    assert cred.excluded_models == ("*opus*",) and cred.headers == (("X-Team", "blue"),)
    assert cred.disable_cooling is True and cred.option("request-retry") == 2
    registry = ModelRegistry(
        authdir.credentials(),
        oauth_model_alias=parse_config(
            "oauth-model-alias: {claude: [{name: claude-sonnet-4-5-20250929, alias: sonnet}]}"
        ).oauth_model_alias,
        oauth_excluded_models={"claude": ("*haiku*",)},
    )
    listed = {m.id for m in registry.list_models()}
    assert "work/sonnet" in listed and "sonnet" in listed
    assert not any("opus" in m or "haiku" in m for m in listed)
    assert registry.resolve("work/sonnet").candidates[0].upstream_model == (
        "claude-sonnet-4-5-20250929"
    )


def test_a_disabled_file_is_loaded_but_serves_nothing(tmp_path):
    write_file(tmp_path, CLAUDE, dict(claude_file("a", "r", T0 + 60), disabled=True))
    authdir = make(tmp_path)
    authdir.scan()
    [cred] = authdir.credentials()
    assert cred.disabled is True
    assert ModelRegistry(authdir.credentials()).list_models() == []


def test_endpoints_from_config_set_each_accounts_api_base(tmp_path):
    write_file(tmp_path, CODEX, codex_file("a", "r", T0 + 60))
    config = parse_config("oauth-endpoints:\n  codex:\n    api-url: http://127.0.0.1:9/c\n")
    authdir = make(tmp_path, config.oauth_endpoints)
    authdir.scan()
    assert authdir.credentials()[0].base_url == "http://127.0.0.1:9/c"


def test_a_gemini_file_with_several_projects_serves_each_with_one_token(tmp_path):
    write_file(
        tmp_path, "gemini-user@example.com-all.json", gemini_file("a", "r", T0 + 60, "p1,p2")
    )
    authdir = make(tmp_path)
    authdir.scan()
    creds = authdir.credentials()
    assert [c.id for c in creds] == [
        "gemini-user@example.com-all.json::p1",
        "gemini-user@example.com-all.json::p2",
    ]
    assert [c.option("project_id") for c in creds] == ["p1", "p2"]
    assert holder_of(creds[0]) is holder_of(creds[1])


def test_files_without_a_known_type_are_ignored_and_named_once(tmp_path, logged):
    write_file(tmp_path, "notes.json", {"hello": "world"})
    write_file(tmp_path, "vertex-p.json", {"type": "vertex", "project_id": "p"})
    write_file(tmp_path, "kiro-p.json", {"type": "kiro"})
    (tmp_path / "readme.txt").write_text("not json")
    authdir = make(tmp_path)
    assert authdir.scan() is False
    os.utime(tmp_path / "notes.json", ns=(1, 1))
    authdir.scan()
    assert authdir.credentials() == []
    assert logged.count("auth file notes.json: has no `type` field; ignored") == 1
    # a service-account file without its key is named with the missing field
    assert "auth file vertex-p.json: skipped: service_account is not a JSON object" in logged
    unserved = [line for line in logged if "types cliproxy does not serve" in line]
    assert unserved == [
        "auth-dir: token files of types cliproxy does not serve are ignored: kiro-p.json (kiro)"
    ]


def test_unserved_token_files_are_named_in_one_warning(tmp_path, logged):
    write_file(tmp_path, "kiro-p.json", {"type": "kiro"})
    write_file(tmp_path, "qwen-a.json", {"type": "qwen"})
    authdir = make(tmp_path)
    authdir.scan()
    authdir.scan()
    unserved = [line for line in logged if "types cliproxy does not serve" in line]
    assert unserved == [
        "auth-dir: token files of types cliproxy does not serve are ignored: "
        "kiro-p.json (kiro), qwen-a.json (qwen)"
    ]


def test_a_damaged_file_is_skipped_named_and_never_touched(tmp_path, logged):
    good = write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    damaged = tmp_path / CODEX
    damaged.write_text('{"type": "codex", "access_token": "at-se')
    authdir = make(tmp_path)
    authdir.scan()
    assert [c.id for c in authdir.credentials()] == [CLAUDE]
    assert (
        f"auth file {CODEX}: skipped: is not valid JSON (line 1, column 35); half-written or "
        "damaged?" in logged
    )
    assert damaged.read_text() == '{"type": "codex", "access_token": "at-se'
    # a good file that gets damaged keeps its last good version in memory
    with open(good, "w") as f:
        f.write('{"type": "claude", "acc')
    assert authdir.scan() is False
    assert holder_of(authdir.credentials()[0]).access_token == "at-1"
    assert any("keeping the version read before" in line for line in logged)
    # and is used again once it is whole
    write_file(tmp_path, CLAUDE, claude_file("at-2", "rt-2", T0 + 3600))
    assert authdir.scan() is True
    assert holder_of(authdir.credentials()[0]).access_token == "at-2"


def test_a_0644_file_is_used_with_a_warning(tmp_path, logged):
    write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600), mode=0o644)
    authdir = make(tmp_path)
    authdir.scan()
    assert len(authdir.credentials()) == 1
    assert (
        f"auth file {CLAUDE}: is readable by other users (mode 0644); run chmod 600 on it" in logged
    )


def test_changes_keep_the_holder_and_removal_drops_the_account(tmp_path):
    write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    authdir = make(tmp_path)
    authdir.scan()
    holder = authdir.holders()[0]
    write_file(tmp_path, CLAUDE, dict(claude_file("at-2", "rt-2", T0 + 3600), prefix="p"))
    assert authdir.scan() is True
    assert authdir.holders()[0] is holder and holder.access_token == "at-2"
    assert authdir.credentials()[0].prefix == "p"
    os.unlink(tmp_path / CLAUDE)
    assert authdir.scan() is True
    assert authdir.credentials() == [] and authdir.accounts() == []


def test_our_own_write_is_not_a_change(tmp_path):
    write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    authdir = make(tmp_path)
    told = []
    authdir.subscribe(lambda: told.append(1))
    authdir.scan()
    holder = authdir.holders()[0]
    holder._record = dict(holder.record, access_token="at-2")  # as a refresh does
    assert authdir.save(holder) is True
    assert authdir.scan() is False
    assert told == [1]
    assert '"at-2"' in (tmp_path / CLAUDE).read_text()


def test_saving_merges_into_a_file_edited_meanwhile(tmp_path):
    write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    authdir = make(tmp_path)
    authdir.scan()
    holder = authdir.holders()[0]
    write_file(tmp_path, CLAUDE, dict(claude_file("at-1", "rt-1", T0 + 3600), priority=3))
    holder._record = dict(holder.record, access_token="at-2", refresh_token="rt-2")
    assert authdir.save(holder) is True
    saved = authdir._reread(CLAUDE)
    assert (saved["access_token"], saved["refresh_token"], saved["priority"]) == ("at-2", "rt-2", 3)


def test_saving_never_overwrites_another_login_or_a_damaged_file(tmp_path, logged):
    path = write_file(tmp_path, CLAUDE, claude_file("at-1", "rt-1", T0 + 3600))
    authdir = make(tmp_path)
    authdir.scan()
    holder = authdir.holders()[0]
    holder._record = dict(holder.record, access_token="at-2", refresh_token="rt-2")
    write_file(tmp_path, CLAUDE, claude_file("at-9", "rt-9", T0 + 3600))  # a new login
    assert authdir.save(holder) is False
    assert '"rt-9"' in open(path).read()
    with open(path, "w") as f:
        f.write("{oops")
    assert authdir.save(holder) is False
    assert open(path).read() == "{oops"


def test_a_missing_auth_dir_is_fine_until_it_appears(tmp_path, logged):
    missing = tmp_path / "later"
    authdir = make(missing)
    assert authdir.scan() is False
    assert any("does not exist yet" in line for line in logged)
    missing.mkdir()
    write_file(missing, CLAUDE, claude_file("a", "r", T0 + 60))
    assert authdir.scan() is True


def test_watcher_rescans_once_changes_settle(tmp_path):
    authdir = make(tmp_path)
    authdir.scan()
    clock = task.Clock()
    told = []
    authdir.subscribe(lambda: told.append(len(authdir.credentials())))
    watcher = AuthDirWatcher(authdir, clock, interval=0.5, debounce=1.0, rescan_every=0)
    watcher.startService()
    try:
        write_file(tmp_path, CLAUDE, claude_file("a", "r", T0 + 60))
        clock.advance(0.5)
        write_file(tmp_path, CODEX, codex_file("a", "r", T0 + 60))  # a burst of files
        clock.advance(0.5)
        clock.advance(0.5)
        assert told == []  # still settling
        clock.advance(0.5)
        assert told == [2]  # one rescan for both
        clock.pump([0.5] * 10)
        assert told == [2]
    finally:
        watcher.stopService()


def test_needs_login_accounts_are_not_usable(tmp_path):
    write_file(tmp_path, CLAUDE, claude_file("a", "r", T0 + 60))
    authdir = make(tmp_path)
    authdir.scan()
    [cred] = authdir.credentials()
    assert usable(cred)
    holder_of(cred).status = "needs-login"
    assert not usable(cred)
