"""Token files: atomic private writes, CLIProxyAPI's names and time formats, clear read errors."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from cliproxy.credentials.store import (
    AuthFileError,
    codex_filename,
    file_mode_problem,
    filename_for,
    format_time,
    parse_time,
    read_auth_file,
    record_expiry,
    write_auth_file,
)
from tests.oauth.kit import T0


def test_write_is_private_atomic_and_pretty(tmp_path):
    path = tmp_path / "new" / "claude-a@b.c.json"
    old_umask = os.umask(0o022)
    try:
        digest = write_auth_file(str(path), {"type": "claude", "email": "a@b.c"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert path.read_text() == '{\n  "type": "claude",\n  "email": "a@b.c"\n}\n'
    assert read_auth_file(str(path)).digest == digest
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_rewriting_a_0644_file_makes_it_0600(tmp_path):
    path = tmp_path / "codex-x.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    assert file_mode_problem(read_auth_file(str(path)).mode) == (
        "is readable by other users (mode 0644); run chmod 600 on it"
    )
    write_auth_file(str(path), {"type": "codex"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert file_mode_problem(0o600) is None


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "claude-x.json"
    write_auth_file(str(path), {"type": "claude", "n": 1})
    with pytest.raises(TypeError):
        write_auth_file(str(path), {"type": "claude", "bad": object()})
    assert read_auth_file(str(path)).record == {"type": "claude", "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["claude-x.json"]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "is empty (half-written?)"),
        (b'{"type": "claude", "access_tok', "is not valid JSON (line 1, column 20); half-written"),
        (b"[1, 2]", "is JSON but not an object"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_unusable_files_say_why_without_echoing_content(tmp_path, content, reason):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(AuthFileError) as info:
        read_auth_file(str(path))
    assert str(info.value).startswith(reason)
    assert "access_tok" not in str(info.value)


def test_times_in_every_form_cliproxyapi_writes():
    assert format_time(T0) == "2026-01-01T00:00:00Z"
    assert parse_time("2026-01-01T00:00:00Z") == T0
    assert parse_time("2026-01-01T08:00:00.123456789+08:00") == pytest.approx(T0 + 0.123456)
    assert parse_time("2026-01-01T00:00:00") == T0  # no zone: UTC
    assert parse_time(T0) == T0
    assert parse_time(T0 * 1000) == T0  # milliseconds
    assert parse_time(str(int(T0))) == T0
    assert parse_time("soon") is None and parse_time(True) is None and parse_time("") is None


def test_expiry_is_found_under_any_of_its_names():
    assert record_expiry({"expired": "2026-01-01T00:00:00Z"}) == T0
    assert record_expiry({"expires_at": T0}) == T0
    assert record_expiry({"token": {"expiry": "2026-01-01T00:00:00Z"}}) == T0
    assert record_expiry({"email": "x"}) is None


def test_file_names_follow_cliproxyapi():
    assert filename_for({"type": "claude", "email": "a@b.c"}) == "claude-a@b.c.json"
    assert filename_for({"type": "codex", "email": "a@b.c"}, "plus") == "codex-a@b.c-plus.json"
    assert filename_for({"type": "codex", "email": "a@b.c"}) == "codex-a@b.c.json"
    assert codex_filename("a@b.c", "Pro Lite") == "codex-a@b.c-pro-lite.json"
    h = hashlib.sha256(b"acct-1").hexdigest()[:8]
    assert codex_filename("a@b.c", "team", "acct-1") == f"codex-{h}-a@b.c-team.json"
    gemini = {"type": "gemini", "email": "a@b.c", "project_id": "p-1"}
    assert filename_for(gemini) == "gemini-a@b.c-p-1.json"
    assert filename_for(dict(gemini, project_id="p-1,p-2")) == "gemini-a@b.c-all.json"
    # nothing in a name can climb out of auth-dir
    assert filename_for({"type": "claude", "email": "../../etc/x"}) == "claude-etc-x.json"
