"""credentials_from_config: config key lists to Credential records with stable ids."""

from __future__ import annotations

from cliproxy.config import parse_config
from cliproxy.credentials.from_config import credentials_from_config
from cliproxy.credentials.model import ModelAlias, stable_id

CONFIG = """
claude-api-key:
  - api-key: sk-ant-one
    prefix: team
    priority: 5
    headers: {X-Extra: "1"}
    models:
      - {name: claude-sonnet-4-5-20250929, alias: sonnet}
    excluded-models: ["*haiku*"]
  - api-key: sk-ant-two
    base-url: https://gateway.example/anthropic/
    proxy-url: socks5://127.0.0.1:1080
    disable-cooling: true
gemini-api-key:
  - api-key: AIza-one
codex-api-key:
  - api-key: no-base-url-is-dropped
  - api-key: sk-codex
    base-url: https://codex.example/v1
    websockets: true
    request-retry: 2
vertex-api-key:
  - api-key: vx-key
    models: [{name: gemini-2.5-pro, alias: vpro}]
openai-compatibility:
  - name: OpenRouter
    base-url: https://openrouter.ai/api/v1
    api-key-entries:
      - api-key: or-1
      - api-key: or-2
        proxy-url: http://proxy.example:3128
    models:
      - {name: vendor/model-a, alias: fast, thinking: {levels: [low, high]}}
      - {name: vendor/model-b, alias: fast, image: true}
      - {name: vendor/model-c, input-modalities: [Text]}
  - name: Local
    base-url: http://127.0.0.1:11434/v1
    disabled: true
    models: [{name: llama3}]
"""


def creds():
    return credentials_from_config(parse_config(CONFIG))


def test_every_usable_entry_becomes_one_credential_in_config_order():
    got = creds()
    assert [(c.kind, c.provider) for c in got] == [
        ("gemini-api-key", "gemini"),
        ("claude-api-key", "claude"),
        ("claude-api-key", "claude"),
        ("codex-api-key", "codex"),
        ("vertex-api-key", "vertex"),
        ("openai-compatibility", "openrouter"),
        ("openai-compatibility", "openrouter"),
        ("openai-compatibility", "local"),
    ]


def test_entry_fields_are_carried_over():
    one, two = [c for c in creds() if c.provider == "claude"]
    assert one.id == stable_id("claude-api-key", "sk-ant-one", "https://api.anthropic.com", "")
    assert (one.prefix, one.priority) == ("team", 5)
    assert one.models == (ModelAlias("claude-sonnet-4-5-20250929", "sonnet"),)
    assert one.excluded_models == ("*haiku*",)
    assert dict(one.headers)["X-Extra"] == "1"
    assert two.base_url == "https://gateway.example/anthropic"
    assert two.proxy_url == "socks5://127.0.0.1:1080"
    assert two.disable_cooling and not one.disable_cooling


def test_codex_options_keep_websockets_and_request_retry():
    [codex] = [c for c in creds() if c.provider == "codex"]
    assert codex.option("websockets") is True
    assert codex.option("request-retry") == 2


def test_openai_compat_yields_one_credential_per_key_with_its_own_proxy():
    a, b = [c for c in creds() if c.provider == "openrouter"]
    assert (a.api_key, a.proxy_url) == ("or-1", "")
    assert (b.api_key, b.proxy_url) == ("or-2", "http://proxy.example:3128")
    assert a.id != b.id
    assert a.models[0].thinking_levels == ("low", "high")
    assert a.models[1].image is True
    assert a.models[2].input_modalities == ("text",) and a.models[2].text_only
    assert a.models[0].input_modalities == () and not a.models[0].text_only


def test_keyless_disabled_compat_provider_is_kept_as_disabled():
    [local] = [c for c in creds() if c.provider == "local"]
    assert local.disabled and local.api_key == ""


def test_ids_are_stable_across_reloads_and_change_with_the_key():
    first = [c.id for c in creds()]
    assert first == [c.id for c in creds()]
    assert len(set(first)) == len(first)
    changed = credentials_from_config(parse_config(CONFIG.replace("sk-ant-one", "sk-ant-new")))
    assert len(set(first) - {c.id for c in changed}) == 1


def test_repr_never_shows_the_key():
    assert all(c.api_key not in repr(c) for c in creds() if c.api_key)


def test_empty_config_has_no_credentials():
    assert credentials_from_config(parse_config("port: 8317\n")) == []
