"""AMP-*, DIFF-*: the module's life cycle, hot reload and reload log (amp.md §2.1, §2.10)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.logger import capturedLogs

from cliproxy.amp import AmpConfigError, AmpModule
from cliproxy.amp.diff import amp_changes, summarize_mappings, upstream_keys_changed
from cliproxy.amp.secrets import SECRETS_FILE_KEY, MappedSecret, StaticSecret
from cliproxy.config import AmpConfig, AmpUpstreamKey, ConfigError, ModelMapping, parse_config
from tests.amp.kit import (
    BEARER,
    UPSTREAM_KEY,
    amp_config,
    call,
    isolate_secrets,
    make_core,
    messages,
)
from tests.fakes import FakeAmp


def test_AMP_01_module_name():
    assert AmpModule.name == "amp-routing"


def test_AMP_02_new_module_is_disabled_without_proxy():
    core = make_core()
    module = AmpModule(core)
    assert module.enabled is False and module.upstream_url == ""
    assert module.core is core  # client-key checks read the live config through it


def test_AMP_03_register_with_a_valid_url_enables_proxy_and_secrets():
    module = AmpModule(make_core())
    module.register(AmpConfig(upstream_url="https://ampcode.com", upstream_api_key="k"))
    assert module.enabled and module.proxy is not None
    assert module.upstream_url == "https://ampcode.com"
    assert module.secrets.get(None) == "k"


@pytest_twisted.ensureDeferred
async def test_AMP_04_no_upstream_is_fine_and_provider_routes_work(start_proxy):
    proxy = start_proxy(amp_config(""))
    assert proxy.app.amp.enabled is False
    status, _, body = await call("GET", proxy.url + "/api/provider/openai/models", headers=BEARER)
    assert status == 200 and json.loads(body)["object"] == "list"


def test_AMP_05_invalid_url_is_an_error():
    with pytest.raises(AmpConfigError):
        AmpModule(make_core()).register(AmpConfig(upstream_url="://invalid-url"))
    with pytest.raises(ConfigError):
        parse_config("ampcode:\n  upstream-url: '://invalid-url'\n")


@pytest_twisted.ensureDeferred
async def test_AMP_06_provider_aliases_with_and_without_upstream(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    for url in ("", amp.url):
        proxy = start_proxy(amp_config(url))
        status, _, _ = await call(
            "GET", proxy.url + "/api/provider/anthropic/v1/models", headers=BEARER
        )
        assert status == 200, url


def test_AMP_07_secret_from_config():
    module = AmpModule(make_core())
    module.register(AmpConfig(upstream_url="https://ampcode.com", upstream_api_key="config-key"))
    assert module.upstream_secret(None) == "config-key"


def test_AMP_08_key_change_invalidates_the_cached_file_secret(tmp_path):
    module = AmpModule(make_core())
    module.register(AmpConfig(upstream_url="https://ampcode.com"))
    isolate_secrets(module, tmp_path)
    (tmp_path / "secrets.json").write_text(json.dumps({SECRETS_FILE_KEY: "from-file"}))
    assert module.upstream_secret(None) == "from-file"
    assert module.file_secret.cache is not None
    module.reconfigure(AmpConfig(upstream_url="https://ampcode.com", upstream_api_key="new"))
    assert module.file_secret.cache is None
    assert module.upstream_secret(None) == "new"


def test_AMP_09_updates_on_disabled_or_static_modules_do_not_fail():
    module = AmpModule(make_core())
    module.register(AmpConfig())
    module.reconfigure(AmpConfig(upstream_api_key="x"))  # disabled: fine
    module.reconfigure(AmpConfig(upstream_url="https://a.example"))
    module.reconfigure(AmpConfig())  # URL removed
    assert module.enabled is False
    module.secrets = MappedSecret(StaticSecret("static"))
    module.reconfigure(AmpConfig(upstream_url="https://a.example", upstream_api_key="other"))
    assert module.upstream_secret(None) == "static"


@pytest_twisted.ensureDeferred
async def test_AMP_10_without_client_keys_requests_pass(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, keys=False))
    status, _, _ = await call("GET", proxy.url + "/api/user")
    assert status == 200 and amp.last.path == "/api/user"
    assert amp.last.header("x-api-key") == UPSTREAM_KEY


def test_AMP_11_upstream_key_mapping_change_detection():
    old = [AmpUpstreamKey("u1", ("k1", "k2"))]
    assert upstream_keys_changed(old, [("u1", ("k1", "k1"))])
    assert not upstream_keys_changed(old, [("u1", ("  k1  ", "", "   ", "k2"))])
    assert upstream_keys_changed(old, [("u2", ("k1", "k2"))])
    assert upstream_keys_changed(old, old + [AmpUpstreamKey("u3", ("k3",))])
    assert not upstream_keys_changed([], [])


@pytest_twisted.ensureDeferred
async def test_AMP_12_hot_reload_of_every_setting(start_fake, start_proxy):
    amp1 = start_fake(FakeAmp)
    amp2 = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(""))
    module = proxy.app.amp
    status, _, body = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 503 and json.loads(body) == {"error": "amp upstream proxy not available"}

    proxy.reconfigure(amp_config(amp1.url))  # added
    assert module.enabled and module.reloads == 1
    status, _, _ = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200 and len(amp1.requests) == 1

    proxy.reconfigure(amp_config(amp2.url))  # changed
    await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert len(amp1.requests) == 1 and len(amp2.requests) == 1

    extra = "model-mappings:\n  - {from: a, to: b}\n  - {from: c, to: d}\n"
    proxy.reconfigure(amp_config(amp2.url, extra=extra))
    assert module.mapper.mappings() == {"a": "b", "c": "d"}
    proxy.reconfigure(amp_config(amp2.url, extra="model-mappings:\n  - {from: e, to: f}\n"))
    assert module.mapper.mappings() == {"e": "f"}  # replaced, not appended
    proxy.reconfigure(amp_config(amp2.url, extra="restrict-management-to-localhost: false\n"))
    assert module.settings.restrict_management_to_localhost is False
    reloads = module.reloads
    proxy.reconfigure(
        amp_config(amp2.url, extra="restrict-management-to-localhost: false\n") + "debug: true\n"
    )
    assert module.reloads == reloads  # only an ampcode change notifies the module

    proxy.reconfigure(amp_config(""))  # removed
    status, _, body = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 503 and json.loads(body) == {"error": "amp upstream proxy not available"}


def test_DIFF_01_reload_log_lines_without_secrets():
    new = AmpConfig(
        upstream_url="https://new",
        upstream_api_key="secret-new-2222",
        restrict_management_to_localhost=False,
        force_model_mappings=True,
        model_mappings=(ModelMapping("a", "b"), ModelMapping("c", "d")),
    )
    old = AmpConfig(
        upstream_url="https://old",
        upstream_api_key="secret-old-1111",
        restrict_management_to_localhost=True,
        model_mappings=(ModelMapping("a", "b"),),
    )
    lines = amp_changes(old, new)
    assert lines == [
        "ampcode.upstream-url: https://old -> https://new",
        "ampcode.upstream-api-key: updated",
        "ampcode.restrict-management-to-localhost: true -> false",
        "ampcode.model-mappings: updated (1 -> 2 entries)",
        "ampcode.force-model-mappings: false -> true",
    ]
    assert amp_changes(AmpConfig(), AmpConfig(upstream_api_key="k")) == [
        "ampcode.upstream-api-key: added"
    ]
    assert amp_changes(AmpConfig(upstream_api_key="k"), AmpConfig()) == [
        "ampcode.upstream-api-key: removed"
    ]
    module = AmpModule(make_core())
    module.register(old)
    with capturedLogs() as events:
        module.reconfigure(new)
    text = "\n".join(messages(events))
    assert "config: ampcode.upstream-api-key: updated" in text
    assert "secret-" not in text


def test_DIFF_02_mapping_summary():
    count, digest = summarize_mappings([ModelMapping("a", "b"), ModelMapping(" ", " ")])
    assert count == 1 and len(digest) == 64
    assert summarize_mappings(None) == (0, "")
    assert summarize_mappings([ModelMapping("", "")]) == (0, "")
    assert (
        summarize_mappings([ModelMapping("c", "d"), ModelMapping("a", "b")])[1]
        == (summarize_mappings([ModelMapping("a", "b"), ModelMapping("c", "d")])[1])
    )
