"""Config, settings, api-keys, provider lists and maps: saved to disk with comments kept."""

from __future__ import annotations

from unittest.mock import ANY

import pytest_twisted

from cliproxy.config import load_config
from tests.management.kit import Served, config_file

KEYS = "api-keys: [k-one, k-two]\nclaude-api-key:\n  - api-key: sk-ant-1  # first\n    base-url: https://a.example\n"


@pytest_twisted.ensureDeferred
async def test_scalar_put_persists_keeps_comments_and_reloads_live(tmp_path, served_factory):
    path = config_file(tmp_path, KEYS)
    s = served_factory(path)
    status, body, _ = await s.call("PUT", "/debug", {"value": True})
    assert (status, body) == (200, {"status": "ok"})
    assert s.store.current.debug is True
    text = path.read_text()
    assert "# the user's own comment" in text and "# keep me" in text and "# first" in text
    status, body, _ = await s.call("PATCH", "/quota-exceeded/switch-project", {"value": False})
    assert status == 200
    assert (await s.call("GET", "/quota-exceeded/switch-project"))[1] == {"switch-project": False}
    # a restart reads the same file
    restarted = Served(path)
    try:
        assert restarted.store.current.debug is True
        assert (await restarted.call("GET", "/debug"))[1] == {"debug": True}
    finally:
        await restarted.stop()


@pytest_twisted.ensureDeferred
async def test_bad_bodies_are_400_and_change_nothing(tmp_path, served_factory):
    path = config_file(tmp_path, KEYS)
    s = served_factory(path)
    before = path.read_bytes()
    for method, where, raw in (
        ("PUT", "/debug", b"not json"),
        ("PUT", "/debug", b'{"value": "yes"}'),
        ("PUT", "/request-retry", b"{}"),
        ("PATCH", "/api-keys", b'{"index": 9, "value": "x"}'),
        ("PUT", "/routing/strategy", b'{"value": "random"}'),
    ):
        status, body, _ = await s.call(method, where, raw=raw)
        assert status == 400, (where, body)
    assert path.read_bytes() == before


@pytest_twisted.ensureDeferred
async def test_yaml_put_validates_like_startup(tmp_path, served_factory):
    path = config_file(tmp_path, KEYS)
    s = served_factory(path)
    before = path.read_bytes()
    status, body, _ = await s.call("PUT", "/config.yaml", raw=b"port: [unclosed")
    assert status == 400 and body["error"] == "invalid_yaml"
    status, body, _ = await s.call("PUT", "/config.yaml", raw=b"port: 99999999\n")
    assert status == 422 and body["error"] == "invalid_config"
    assert path.read_bytes() == before
    status, text, headers = await s.call("GET", "/config.yaml")
    assert status == 200 and b"# keep me" in text
    new = text.replace(b"port: 8317", b"port: 8318\nrequest-retry: 2")
    status, body, _ = await s.call("PUT", "/config.yaml", raw=new)
    assert (status, body) == (200, {"ok": True, "changed": ["config"]})
    assert s.store.current.request_retry == 2
    assert load_config(str(path)).request_retry == 2


@pytest_twisted.ensureDeferred
async def test_config_json_hides_listener_and_management(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS))
    status, body, _ = await s.call("GET", "/config")
    assert status == 200
    assert "host" not in body and "remote-management" not in body and "auth-dir" not in body
    assert body["api-keys"] == ["k-one", "k-two"]
    assert body["routing"] == {"strategy": "round-robin"}


@pytest_twisted.ensureDeferred
async def test_api_keys_put_patch_delete(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS))
    assert (await s.call("PUT", "/api-keys", {"items": ["a", "b"]}))[0] == 200
    assert (await s.call("PATCH", "/api-keys", {"index": 1, "value": "B"}))[0] == 200
    assert (await s.call("PATCH", "/api-keys", {"old": "zz", "new": "c"}))[0] == 200
    assert (await s.call("DELETE", "/api-keys?value=a"))[0] == 200
    assert (await s.call("GET", "/api-keys"))[1] == {"api-keys": ["B", "c"]}
    assert s.store.current.api_keys == ("B", "c")


@pytest_twisted.ensureDeferred
async def test_provider_key_list_patch_and_delete_by_key(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS))
    status, body, _ = await s.call("GET", "/claude-api-key")
    assert status == 200
    [entry] = body["claude-api-key"]
    assert entry["api-key"] == "sk-ant-1" and entry["auth-index"].startswith("claude-api-key:")
    assert (
        await s.call("PATCH", "/claude-api-key", {"match": "sk-ant-1", "value": {"prefix": "p"}})
    )[0] == 200
    assert s.store.current.claude_api_key[0].prefix == "p"
    status, _, _ = await s.call("DELETE", "/claude-api-key?api-key=sk-ant-1")
    assert status == 200 and s.store.current.claude_api_key == ()
    status, _, _ = await s.call("PATCH", "/claude-api-key", {"index": 3, "value": {}})
    assert status == 400


@pytest_twisted.ensureDeferred
async def test_compat_and_oauth_maps_and_strategy(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, KEYS))
    compat = [
        {"name": "Gw", "base-url": "https://gw.example/v1", "api-key-entries": [{"api-key": "x"}]}
    ]
    assert (await s.call("PUT", "/openai-compatibility", compat))[0] == 200
    assert s.store.current.openai_compatibility[0].name == "Gw"
    assert (await s.call("DELETE", "/openai-compatibility?name=Gw"))[0] == 200
    assert (
        await s.call("PATCH", "/oauth-excluded-models", {"provider": "Claude", "models": ["x*"]})
    )[0] == 200
    assert (await s.call("GET", "/oauth-excluded-models"))[1] == {
        "oauth-excluded-models": {"claude": ["x*"]}
    }
    assert (await s.call("DELETE", "/oauth-excluded-models?provider=claude"))[0] == 200
    assert (await s.call("PUT", "/routing/strategy", {"value": "fill-first"}))[0] == 200
    assert (await s.call("GET", "/routing/strategy"))[1] == {"strategy": "fill-first"}
    assert (await s.call("PUT", "/proxy-url", {"value": "socks5://127.0.0.1:1080"}))[0] == 200
    assert (await s.call("DELETE", "/proxy-url"))[0] == 200
    assert (await s.call("GET", "/proxy-url"))[1] == {"proxy-url": ""}
    assert (await s.call("GET", "/latest-version"))[1]["latest-version"]
    plugins = {"plugins_enabled": False, "plugins_dir": "plugins", "plugins": []}
    assert await s.call("GET", "/plugins") == (200, plugins, ANY)
    assert (await s.call("PATCH", "/plugins/x/enabled", {"enabled": True}))[0] == 405


@pytest_twisted.ensureDeferred
async def test_xai_key_list_put_get_delete(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    assert (await s.call("GET", "/xai-api-key"))[1] == {"xai-api-key": []}
    entries = [{"api-key": "xai-key-0001", "base-url": "https://x.example/v1"}]
    assert (await s.call("PUT", "/xai-api-key", entries))[0] == 200
    [cred] = s.store.current.xai_api_key
    assert cred.api_key == "xai-key-0001"
    status, body, _ = await s.call("GET", "/xai-api-key")
    [entry] = body["xai-api-key"]
    assert status == 200 and entry["auth-index"].startswith("xai-api-key:")
    assert "xai-api-key:" in (tmp_path / "config.yaml").read_text()
    assert (await s.call("DELETE", "/xai-api-key?api-key=xai-key-0001"))[0] == 200
    assert s.store.current.xai_api_key == ()
