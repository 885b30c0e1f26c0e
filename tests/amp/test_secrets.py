"""SEC-*: where the Amp upstream key comes from (amp.md §2.2)."""

from __future__ import annotations

import json
import threading

import pytest
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from cliproxy.amp.secrets import (
    DUPLICATE_WARNING,
    SECRETS_FILE_KEY,
    AmpSecretError,
    FileSecret,
    MappedSecret,
    MultiSourceSecret,
    StaticSecret,
)
from cliproxy.config import AmpUpstreamKey
from tests.amp.kit import messages


def write_secret(path, value) -> None:
    path.write_text(json.dumps({SECRETS_FILE_KEY: value, "other@x": "y"}))


def sources(tmp_path, explicit="", env=None, ttl=300.0, clock=None):
    clock = clock or Clock()
    file = FileSecret(str(tmp_path / "secrets.json"), ttl, now=clock.seconds)
    return MultiSourceSecret(explicit, environ=env or {}, file=file), file, clock


def test_SEC_01_precedence_config_then_env_then_file(tmp_path):
    write_secret(tmp_path / "secrets.json", "file-key")
    s, _, _ = sources(tmp_path, "config-key", {"AMP_API_KEY": "env-key"})
    assert s.get() == "config-key"
    s, _, _ = sources(tmp_path, "", {"AMP_API_KEY": "env-key"})
    assert s.get() == "env-key"
    s, _, _ = sources(tmp_path, "", {})
    assert s.get() == "file-key"


def test_SEC_02_whitespace_only_values_fall_through(tmp_path):
    write_secret(tmp_path / "secrets.json", "file-key")
    s, _, _ = sources(tmp_path, "   ", {"AMP_API_KEY": "env-key"})
    assert s.get() == "env-key"
    s, _, _ = sources(tmp_path, "", {"AMP_API_KEY": " \t "})
    assert s.get() == "file-key"
    write_secret(tmp_path / "secrets.json", "   ")
    s, _, _ = sources(tmp_path, "  ", {"AMP_API_KEY": "  "})
    assert s.get() == ""


def test_SEC_03_missing_file_is_empty_invalid_json_is_an_error(tmp_path):
    clock = Clock()
    missing = FileSecret(str(tmp_path / "nope.json"), 300, now=clock.seconds)
    assert missing.get() == ""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AmpSecretError, match="not valid JSON"):
        FileSecret(str(bad), 300, now=clock.seconds).get()
    nokey = tmp_path / "nokey.json"
    nokey.write_text(json.dumps({"something": "else"}))
    assert FileSecret(str(nokey), 300, now=clock.seconds).get() == ""
    blank = tmp_path / "blank.json"
    write_secret(blank, "   ")
    assert FileSecret(str(blank), 300, now=clock.seconds).get() == ""
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(AmpSecretError):
        FileSecret(str(listed), 300, now=clock.seconds).get()


def test_SEC_04_file_value_cached_for_ttl_and_invalidate_rereads(tmp_path):
    path = tmp_path / "secrets.json"
    write_secret(path, "first")
    s, file, clock = sources(tmp_path, ttl=0.1)
    assert s.get() == "first"
    write_secret(path, "second")
    clock.advance(0.05)
    assert s.get() == "first"  # inside the TTL
    clock.advance(0.06)
    assert s.get() == "second"
    write_secret(path, "third")
    file.invalidate()
    assert file.cache is None
    assert s.get() == "third"


def test_SEC_04_default_ttl_is_five_minutes(tmp_path):
    assert FileSecret(str(tmp_path / "x")).ttl == 300


def test_SEC_05_missing_file_result_is_cached_too(tmp_path):
    s, _, clock = sources(tmp_path, ttl=0.1)
    assert s.get() == ""
    write_secret(tmp_path / "secrets.json", "late")
    clock.advance(0.05)
    assert s.get() == ""
    clock.advance(0.06)
    assert s.get() == "late"


def test_SEC_06_concurrent_readers_agree(tmp_path):
    write_secret(tmp_path / "secrets.json", "shared")
    s, _, _ = sources(tmp_path, ttl=0.0)  # every call re-reads: the worst case
    results, errors = [], []

    def reader() -> None:
        try:
            for _ in range(100):
                results.append(s.get())
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 5000 and set(results) == {"shared"}


def test_SEC_07_static_source_trims():
    assert StaticSecret("  k  ").get() == "k"
    assert StaticSecret("").get() == ""


def test_SEC_08_per_client_mapping_else_default():
    s = MappedSecret(StaticSecret("default"), [AmpUpstreamKey("u1", ("k1",))])
    assert s.get("k1") == "u1"
    assert s.get("k2") == "default"
    assert s.get(None) == "default"


def test_SEC_09_duplicate_client_key_first_wins_with_warning():
    with capturedLogs() as events:
        s = MappedSecret(StaticSecret("d"), [("u1", ("k1", "k2")), ("u2", ("k1", "k3"))])
    assert s.get("k1") == "u1"
    assert s.get("k3") == "u2"
    assert DUPLICATE_WARNING in messages(events)
    assert DUPLICATE_WARNING == (
        "amp upstream-api-keys: client API key appears in multiple entries; using first mapping."
    )


def test_SEC_10_config_and_env_are_read_every_call_blank_entries_skipped(tmp_path):
    env = {"AMP_API_KEY": "env-1"}
    s, _, _ = sources(tmp_path, "", env)
    assert s.get() == "env-1"
    env["AMP_API_KEY"] = "env-2"
    assert s.get() == "env-2"  # not cached
    s.update_explicit(" cfg ")
    assert s.get() == "cfg"
    m = MappedSecret(StaticSecret("d"), [("  ", ("k1",)), ("u2", ("", "  ", " k2 "))])
    assert m.lookup == {"k2": "u2"}


def test_SEC_11_keys_never_reach_the_log(tmp_path):
    bad = tmp_path / "secrets.json"
    bad.write_text("{broken")
    with capturedLogs() as events:
        MappedSecret(StaticSecret("d"), [("upstream-secret-aaaa", ("client-secret-bbbb",))] * 2)
        s, _, _ = sources(tmp_path)
        with pytest.raises(AmpSecretError):
            s.get()
    text = "\n".join(messages(events)) + repr([dict(e) for e in events])
    assert "upstream-secret-aaaa" not in text and "client-secret-bbbb" not in text
    assert repr(AmpUpstreamKey("upstream-secret-aaaa", ("c",))).count("aaaa") == 1  # last 4 only
