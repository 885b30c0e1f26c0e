"""`payload` rules (core.md §5): config parsing, the JSON paths they use, and their effect on
what providers receive, end to end over loopback."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq

from cliproxy.config import parse_config
from cliproxy.config.errors import ConfigError
from cliproxy.formats import Format
from cliproxy.upstream import json_paths
from cliproxy.upstream.payload import apply_payload_rules, client_protocol, provider_protocol
from tests.fakes import FakeClaude, FakeGemini, FakeOpenAI
from tests.serving_kit import CLIENT_KEY, providers

RULES = """
payload:
  default:
    - models: [{name: "gemini-*", protocol: gemini}]
      params: {"generationConfig.thinkingConfig.thinkingBudget": 32768}
    - models: [{name: "gemini-*"}]
      params: {"generationConfig.thinkingConfig.thinkingBudget": 1, "generationConfig.topK": 7}
  default-raw:
    - models: [{name: "gemini-fake"}]
      params: {"generationConfig.responseJsonSchema": '{"type":"object"}'}
  override:
    - models: [{name: "claude-*", protocol: claude, from-protocol: openai}]
      params: {"temperature": 0.2, "metadata.user_id": "team-a"}
    - models: [{name: "claude-*", match: [{"temperature": 0.2}]}]
      params: {"temperature": 0.3}
  filter:
    - models: [{name: "gpt-*", protocol: openai, exist: ["tools"]}]
      params: ["tools.#(type==\\"web_search\\")", "stream_options"]
"""


def rules():
    return parse_config("port: 8317\n" + RULES).payload


def test_rules_are_read_with_raw_json_parsed_and_nothing_reported():
    config = parse_config("port: 8317\n" + RULES, "config.yaml")
    assert config.warnings == ()
    payload = config.payload
    assert payload.default_raw[0].params == (
        ("generationConfig.responseJsonSchema", {"type": "object"}),
    )
    assert payload.override[0].models[0].from_protocol == "openai"
    assert payload.filter[0].params[1] == ("stream_options", None)


@pytest.mark.parametrize(
    "text, where",
    [
        ("payload: {default-raw: [{models: [{name: m}], params: {a: '{bad'}}]}", "a"),
        (
            "payload: {override: [{models: [{name: m, protocol: grpc}], params: {a: 1}}]}",
            "protocol",
        ),
        ("payload: {filter: [{models: [{name: m}], params: {a: 1}}]}", "params"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_key(text, where):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert where in str(info.value) and "payload" in str(info.value)


def test_a_rule_without_models_is_dropped_with_a_warning():
    config = parse_config("payload: {default: [{params: {a: 1}}]}", "c.yaml")
    assert config.payload.default == ()
    assert any("needs models" in w for w in config.warnings)


def test_json_paths_resolve_queries_and_edit_in_place():
    doc = {"tools": [{"type": "function", "name": "a"}, {"type": "web_search"}, {"type": "x"}]}
    assert json_paths.resolve(doc, 'tools.#(type=="web_search")') == [["tools", 1]]
    assert json_paths.resolve(doc, 'tools.#(type!="function")#') == [["tools", 1], ["tools", 2]]
    assert json_paths.resolve(doc, 'tools.#(type%"web*"||name=="a")#.type') == [
        ["tools", 0, "type"],
        ["tools", 1, "type"],
    ]
    assert json_paths.resolve(doc, 'tools.#(type=="none")') == []
    steps = json_paths.resolve(doc, "a\\.b.c")[0]
    assert steps == ["a.b", "c"] and json_paths.put(doc, steps, 1) and doc["a.b"] == {"c": 1}
    assert json_paths.put(doc, ["tools", -1], {"type": "y"}) and doc["tools"][-1] == {"type": "y"}
    assert json_paths.put(doc, ["tools", 2, "type", "deeper"], 1)  # a scalar is replaced
    assert doc["tools"][2]["type"] == {"deeper": 1}
    assert not json_paths.put(doc, ["tools", "name"], 1)  # an array takes no key
    assert json_paths.delete(doc, ["tools", 0]) and doc["tools"][0] == {"type": "web_search"}
    assert len(doc["tools"]) == 3
    assert not json_paths.delete(doc, ["nothing"])
    assert json_paths.get(doc, ["tools", 9]) is json_paths.MISSING


def test_defaults_fill_only_what_the_request_lacks_and_the_first_rule_wins():
    body = {"contents": [], "generationConfig": {"topK": 3}}
    out = apply_payload_rules(
        rules(),
        body,
        model="gemini-2.5-pro",
        requested_model="gemini-2.5-pro(high)",
        protocol="gemini",
        from_protocol="openai",
        headers={},
    )
    assert out["generationConfig"] == {"topK": 3, "thinkingConfig": {"thinkingBudget": 32768}}
    assert body == {"contents": [], "generationConfig": {"topK": 3}}  # not changed


def test_protocol_names():
    assert provider_protocol("gemini-cli", Format.GEMINI) == "gemini"
    assert provider_protocol("codex", Format.OPENAI_RESPONSES) == "codex"
    assert provider_protocol("openai-compatibility", Format.OPENAI_CHAT) == "openai"
    assert client_protocol(Format.OPENAI_RESPONSES) == "responses"
    assert client_protocol(Format.CLAUDE) == "claude"


async def post(url, body, headers=None):
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    h.update(headers or {})
    response = await treq.post(url, json.dumps(body).encode(), headers=h)
    return response.code, await response.content()


def chat(model, **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest_twisted.ensureDeferred
async def test_rules_shape_what_each_provider_receives(start_fake, start_proxy):
    claude = start_fake(FakeClaude, keys={"sk-ant-test-1"})
    gemini = start_fake(FakeGemini, keys={"g-test-1"})
    oai = start_fake(FakeOpenAI, keys={"sk-oai-test-1"})
    proxy = start_proxy(providers(claude=claude, gemini=gemini, oai=oai, extra=RULES))
    chat_url = proxy.url + "/v1/chat/completions"

    code, raw = await post(chat_url, chat("gemini-fake", temperature=0.5))
    assert code == 200, raw
    config = gemini.last.json["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 32768}
    assert config["topK"] == 7 and config["responseJsonSchema"] == {"type": "object"}
    assert config["temperature"] == 0.5

    code, raw = await post(chat_url, chat("claude-fake", temperature=0.9))
    assert code == 200, raw
    # override rules apply in order: the second matches what the first set
    assert claude.last.json["temperature"] == 0.3
    assert claude.last.json["metadata"]["user_id"] == "team-a"
    # from a Claude client the first override does not apply, so neither does the second
    messages_url = proxy.url + "/v1/messages"
    body = {"model": "claude-fake", "max_tokens": 50, "temperature": 0.9}
    body["messages"] = [{"role": "user", "content": "hi"}]
    code, raw = await post(messages_url, body)
    assert code == 200, raw
    assert claude.last.json["temperature"] == 0.9 and "metadata" not in claude.last.json

    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
        {"type": "web_search"},
    ]
    code, raw = await post(chat_url, chat("gpt-fake", tools=tools))
    assert code == 200, raw
    assert [t["type"] for t in oai.last.json["tools"]] == ["function"]
    code, raw = await post(chat_url, chat("gpt-fake", stream=True, stream_options={"a": 1}))
    assert code == 200, raw
    assert oai.last.json["stream_options"]["a"] == 1  # no tools: the filter does not apply


@pytest_twisted.ensureDeferred
async def test_header_conditions_see_the_clients_headers(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI, keys={"sk-oai-test-1"})
    rules = (
        "payload:\n  override:\n"
        '    - models: [{name: "gpt-*", headers: {X-Client-Tier: "tenant-*-eu"}}]\n'
        "      params: {temperature: 0.1}\n"
    )
    proxy = start_proxy(providers(oai=oai, extra=rules))
    url = proxy.url + "/v1/chat/completions"
    code, raw = await post(url, chat("gpt-fake", temperature=0.9), {"X-Client-Tier": "tenant-7-eu"})
    assert code == 200, raw
    assert oai.last.json["temperature"] == 0.1
    code, raw = await post(url, chat("gpt-fake", temperature=0.9), {"X-Client-Tier": "tenant-7-us"})
    assert code == 200, raw
    assert oai.last.json["temperature"] == 0.9
