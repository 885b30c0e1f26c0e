"""amp.md MGT-01..10 against a running server."""

from __future__ import annotations

import pytest_twisted

from cliproxy.config import load_config
from tests.management.kit import config_file


@pytest_twisted.ensureDeferred
async def test_mgt01_to_03_summary_url_and_masked_key(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    status, body, _ = await s.call("GET", "/ampcode")
    assert status == 200 and body["ampcode"]["upstream-url"] == ""
    assert (await s.call("PUT", "/ampcode/upstream-url", {"value": "https://new-upstream.com"}))[
        0
    ] == 200
    assert (await s.call("GET", "/ampcode/upstream-url"))[1] == {
        "upstream-url": "https://new-upstream.com"
    }
    assert (await s.call("DELETE", "/ampcode/upstream-url"))[0] == 200
    assert (await s.call("GET", "/ampcode/upstream-url"))[1] == {"upstream-url": ""}
    assert (await s.call("PUT", "/ampcode/upstream-api-key", {"value": "amp-secret-abcdef"}))[
        0
    ] == 200
    shown = (await s.call("GET", "/ampcode/upstream-api-key"))[1]["upstream-api-key"]
    assert shown == "***cdef"  # MGT-10: never in clear
    assert s.store.current.ampcode.upstream_api_key == "amp-secret-abcdef"


@pytest_twisted.ensureDeferred
async def test_mgt04_05_upstream_api_keys(tmp_path, served_factory):
    path = config_file(tmp_path)
    s = served_factory(path)
    value = [{"upstream-api-key": "  u1  ", "api-keys": ["  k1  ", "", "k2"]}]
    assert (await s.call("PUT", "/ampcode/upstream-api-keys", {"value": value}))[0] == 200
    [entry] = load_config(str(path)).ampcode.upstream_api_keys
    assert entry.upstream_api_key == "u1" and entry.api_keys == ("k1", "k2")
    summary = (await s.call("GET", "/ampcode"))[1]["ampcode"]
    assert summary["upstream-api-keys"][0]["api-keys"] == ["k1", "k2"]
    assert (await s.call("DELETE", "/ampcode/upstream-api-keys", raw=b"nope"))[1] == {
        "error": "invalid body"
    }
    assert (await s.call("DELETE", "/ampcode/upstream-api-keys", {}))[1] == {
        "error": "missing value"
    }
    assert (await s.call("DELETE", "/ampcode/upstream-api-keys", {"value": [" "]}))[1] == {
        "error": "empty value"
    }
    assert (await s.call("DELETE", "/ampcode/upstream-api-keys", {"value": []}))[0] == 200
    assert s.store.current.ampcode.upstream_api_keys == ()


@pytest_twisted.ensureDeferred
async def test_mgt06_07_09_booleans(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    assert (await s.call("PUT", "/ampcode/restrict-management-to-localhost", {"value": False}))[
        0
    ] == 200
    assert (await s.call("GET", "/ampcode/restrict-management-to-localhost"))[1] == {
        "restrict-management-to-localhost": False
    }
    assert (await s.call("GET", "/ampcode/force-model-mappings"))[1] == {
        "force-model-mappings": False
    }
    assert (await s.call("PATCH", "/ampcode/force-model-mappings", {"value": True}))[0] == 200
    assert s.store.current.ampcode.force_model_mappings is True
    assert (await s.call("PUT", "/ampcode/force-model-mappings", {}))[0] == 400


@pytest_twisted.ensureDeferred
async def test_mgt08_model_mappings_workflow(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))

    def m(f, t):
        return {"from": f, "to": t}

    put = [m("m1", "t1"), m("m2", "t2"), m("m3", "t3"), m("m4", "t4")]
    assert (await s.call("PUT", "/ampcode/model-mappings", {"value": put}))[0] == 200
    patch = [m("m2", "t2-updated"), m("m5", "t5")]
    assert (await s.call("PATCH", "/ampcode/model-mappings", {"value": patch}))[0] == 200
    assert (await s.call("DELETE", "/ampcode/model-mappings", {"value": ["m1", "m3", "nope"]}))[
        0
    ] == 200
    got = (await s.call("GET", "/ampcode/model-mappings"))[1]["model-mappings"]
    assert got == [m("m2", "t2-updated"), m("m4", "t4"), m("m5", "t5")]
    assert (await s.call("DELETE", "/ampcode/model-mappings"))[0] == 200
    assert s.store.current.ampcode.model_mappings == ()


@pytest_twisted.ensureDeferred
async def test_mgt10_yaml_written_atomically_keeps_comments(tmp_path, served_factory):
    path = config_file(
        tmp_path, "ampcode:\n  # where Amp goes\n  upstream-url: https://a.example\n"
    )
    s = served_factory(path)
    assert (await s.call("PUT", "/ampcode/upstream-url", {"value": "https://b.example"}))[0] == 200
    text = path.read_text()
    assert "# where Amp goes" in text and "https://b.example" in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
