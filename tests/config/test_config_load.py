"""Loading config.yaml: file problems, line numbers, warnings, upstream configs, our defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.config import ConfigError, load_config
from cliproxy.config._fields import Context
from cliproxy.config._parse import build_config
from cliproxy.config._yaml import load_tree, plain
from tests.config.yamltext import error_of, parse

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf" / "config.yaml"
UPSTREAM_STYLE = Path(__file__).with_name("cliproxyapi_config.yaml")


# -- file problems --------------------------------------------------------------------------


def test_missing_file_is_one_clear_line(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: file not found"
    assert info.value.line is None and info.value.source == str(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(str(path))


def test_other_os_errors_are_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "file" / "config.yaml"))
    assert str(info.value).endswith(": cannot be read: Not a directory")
    with pytest.raises(ConfigError, match="not a usable file name"):
        load_config("conf\0ig.yaml")


def test_not_yaml_reports_the_line_of_the_problem(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\nhost: 127.0.0.1\napi-keys: [a, b\ndebug: true\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    err = info.value
    assert "not valid YAML" in str(err)
    assert err.line is not None and err.line >= 3
    assert "\n" not in str(err)


def test_bad_indentation_is_reported_on_its_line():
    err = error_of("port: 8317\n host: x\ndebug: true\n")
    assert err.line == 2 and "not valid YAML" in err.message


def test_unclosed_bracket_says_where_it_started():
    err = error_of("port: 1\napi-keys: [a,\nb: 2\n")
    assert "line 2" in err.message


def test_not_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"port: 8317\nhost: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.line == 2 and "UTF-8" in info.value.message


@pytest.mark.parametrize(
    "text,kind",
    [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("8317\n", "an integer")],
)
def test_top_level_must_be_a_mapping(text, kind):
    err = error_of(text)
    assert err.message == f"the top level must be a mapping of keys, got {kind}"
    assert err.line == 1


def test_empty_file_is_an_error_but_empty_mapping_is_not():
    assert "no settings" in error_of("# only a comment\n").message
    assert parse("{}").port == 8317


@pytest.mark.parametrize("depth", [65, 5000])
def test_absurd_nesting_is_a_config_error(depth):
    # Our own limit: the message must not depend on PyYAML's or libyaml's wording.
    err = error_of("a: " + "[" * depth + "]" * depth + "\n")
    assert err.message == "lists or mappings are nested more than 64 levels deep"
    assert err.line == 1


def test_block_nesting_past_the_limit_is_a_config_error():
    text = "".join("  " * i + f"k{i}:\n" for i in range(70)) + "  " * 70 + "v: 1\n"
    assert "nested more than 64 levels" in error_of(text).message


def test_nesting_at_the_limit_loads():
    root, _ = load_tree("a: " + "[" * 63 + "]" * 63 + "\n", "x")
    inner = plain(root)["a"]
    for _level in range(62):
        (inner,) = inner
    assert inner == []


def test_multiple_documents_are_refused():
    err = error_of("port: 1\n---\nport: 2\n")
    assert "not valid YAML" in err.message and err.line == 2


# -- line numbers and paths ----------------------------------------------------------------


def test_error_names_key_path_and_line():
    text = """\
        port: 8317
        claude-api-key:
          - api-key: sk-one
          - api-key: sk-two
            base-url: "not a url"
        """
    err = error_of(text)
    assert str(err) == "config.yaml: claude-api-key[1].base-url: not a URL: 'not a url' (line 5)"
    assert (err.path, err.line, err.source) == ("claude-api-key[1].base-url", 5, "config.yaml")


@pytest.mark.parametrize(
    "text,path,line,words",
    [
        ("debug: false\nport: eighty\n", "port", 2, "whole number"),
        ("port: 0\n", "port", 1, "at least 1"),
        ("port: 65536\n", "port", 1, "at most 65535"),
        ("port: 8317.5\n", "port", 1, "whole number"),
        ("debug: 'yes please'\n", "debug", 1, "true or false"),
        ("\n\nrequest-retry: true\n", "request-retry", 3, "whole number"),
        ("routing:\n  strategy: random\n", "routing.strategy", 2, "fill-first, round-robin"),
        ("streaming:\n  keepalive-seconds: -1\n", "streaming.keepalive-seconds", 2, "non-negative"),
        ("limits:\n  max-body-size: lots\n", "limits.max-body-size", 2, "not a size"),
        ("tls: yes\n", "tls", 1, "mapping"),
        ("api-keys: sk-single\n", "api-keys", 1, "list"),
        ("api-keys:\n  - ok\n  - {a: b}\n", "api-keys[1]", 3, "string"),
        ("proxy-url: ftp://x.example\n", "proxy-url", 1, "socks5"),
        (
            "gemini-api-key:\n  - api-key: k\n    models:\n      - alias: x\n",
            "gemini-api-key[0].models[0].name",
            4,
            "required",
        ),
        (
            "openai-compatibility:\n  - name: x\n    base-url: http://x\n    priority: high\n",
            "openai-compatibility[0].priority",
            4,
            "whole number",
        ),
    ],
)
def test_wrong_values_are_located(text, path, line, words):
    err = error_of(text)
    assert err.path == path
    assert err.line == line
    assert words in err.message
    assert str(err).startswith(f"config.yaml: {path}: ")


def test_null_values_mean_default():
    config = parse("port:\nhost:\nrouting:\n  strategy:\n")
    assert config.port == 8317 and config.host == "" and config.routing.strategy == "round-robin"


def test_plain_scalars_are_read_as_written_where_a_string_is_expected():
    config = parse(
        "api-keys: [0123, 12345, yes, 2024-01-01]\nremote-management:\n  secret-key: 007\n"
    )
    assert config.api_keys == ("0123", "12345", "yes", "2024-01-01")
    assert config.remote_management.secret_key == "007"


def test_a_boolean_where_a_string_is_expected_is_an_error():
    err = error_of("claude-api-key:\n  - api-key: true\n")
    assert (err.path, err.line) == ("claude-api-key[0].api-key", 2)
    assert "expected a string, got a boolean" in err.message


# -- warnings ------------------------------------------------------------------------------


def test_unknown_keys_warn_with_path_and_line():
    config = parse(
        """\
        port: 8317
        colour: blue
        routing:
          strategy: fill-first
          mood: calm
        """
    )
    assert config.port == 8317 and config.routing.strategy == "fill-first"
    # Sections report as they are read, the top level last.
    assert config.warnings == (
        "config.yaml: routing.mood: unknown key, ignored (line 5)",
        "config.yaml: colour: unknown key, ignored (line 2)",
    )


def test_duplicate_key_warns_and_last_wins():
    config = parse("port: 1\nport: 2\n")
    assert config.port == 2
    assert config.warnings == ("config.yaml: port: duplicate key, the last one is used (line 2)",)


def test_yaml_anchors_and_merge_keys_work():
    config = parse(
        """\
        claude-api-key:
          - &base
            api-key: k1
            base-url: https://gw.example.com
          - <<: *base
            api-key: k2
        """
    )
    assert [e.api_key for e in config.claude_api_key] == ["k1", "k2"]
    assert {e.base_url for e in config.claude_api_key} == {"https://gw.example.com"}


# -- paths ---------------------------------------------------------------------------------


def test_tilde_expands_in_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse(
        """\
        auth-dir: ~/auths
        tls:
          enable: true
          cert: ~/tls/cert.pem
          key: ~/tls/key.pem
        """
    )
    assert config.auth_dir == str(tmp_path / "auths")
    assert config.tls.cert == str(tmp_path / "tls" / "cert.pem")
    assert config.tls.key == str(tmp_path / "tls" / "key.pem")


def test_default_auth_dir_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse("port: 1\n").auth_dir == str(tmp_path / ".cli-proxy-api")


def test_load_config_expands_tilde_in_its_own_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.yaml").write_text("port: 9000\n")
    config = load_config("~/c.yaml")
    assert config.port == 9000 and config.source_path == "~/c.yaml"


# -- whole files ---------------------------------------------------------------------------


def test_upstream_style_config_loads_without_warnings(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(str(UPSTREAM_STYLE))
    # nothing is wrong with it; what it asks for that cliproxy does not do is named
    unsupported = {w.split("accepted but not supported: ")[1] for w in config.warnings}
    assert all("accepted but not supported: " in w for w in config.warnings)
    assert {u.split(" (line")[0] for u in unsupported} == {
        "pprof",
        "plugins",
        "quota-exceeded",
        "ws-auth",
    }
    assert config.host == "" and config.port == 8317
    assert config.api_keys == ("sk-client-one-1111", "sk-client-two-2222")
    assert config.auth_dir == str(tmp_path / ".cli-proxy-api")
    assert config.request_retry == 3 and config.max_retry_interval == 30
    assert config.ws_auth is True and config.logging_to_file is True
    assert config.streaming.keepalive_seconds == 15 and config.streaming.bootstrap_retries == 1
    assert config.routing.session_affinity_ttl == 3600.0
    assert dict(config.claude_header_defaults)["user-agent"] == "claude-cli/2.0.0 (external, cli)"
    assert config.codex_header_defaults == (
        ("user-agent", "codex_cli_rs/0.100.0"),
        ("beta-features", "multi_agent"),
    )
    assert len(config.gemini_api_key) == 2
    assert config.gemini_api_key[0].base_url == "https://generativelanguage.googleapis.com"
    assert config.gemini_api_key[0].excluded_models == (
        "gemini-2.5-pro",
        "gemini-2.5-*",
        "*-preview",
    )
    assert config.codex_api_key[0].websockets is True
    assert config.codex_api_key[0].proxy_url == "direct"
    assert config.claude_api_key[0].base_url == "https://api.anthropic.com"
    assert config.claude_api_key[1].option("cloak")["mode"] == "auto"
    compat = config.openai_compatibility[0]
    assert compat.provider == "openrouter" and len(compat.api_key_entries) == 2
    assert compat.models[1].thinking_levels == ("low", "high")
    assert [m.alias for m in config.vertex_api_key[0].models] == ["vertex-flash", "vertex-pro"]
    assert config.ampcode.upstream_url == "https://ampcode.com"
    assert config.ampcode.model_mappings[1].regex is True
    assert config.oauth_model_alias["claude"][0].fork is True
    assert config.oauth_excluded_models["claude"] == ("claude-3-5-haiku-20241022",)
    # Kept but not modelled: available as plain data.
    assert config.raw["payload"]["filter"][0]["params"] == ["generationConfig.responseJsonSchema"]
    assert config.raw["pprof"] == {"enable": False, "addr": "127.0.0.1:8316"}
    assert type(config.raw) is dict and type(config.raw["quota-exceeded"]) is dict


def test_shipped_config_loads_cleanly_and_stays_on_loopback():
    config = load_config(str(CONF))
    assert config.warnings == ()
    assert (config.host, config.port) == ("127.0.0.1", 8317)
    assert config.api_keys == ()
    providers = (
        config.gemini_api_key,
        config.claude_api_key,
        config.codex_api_key,
        config.vertex_api_key,
        config.openai_compatibility,
    )
    assert all(p == () for p in providers)
    assert config.listen_endpoint() == "tcp:port=8317:backlog=1024:interface=127.0.0.1"


# Everything a complete config can hold, one list item each, to learn which keys we read.
EVERYTHING = """\
tls: {enable: true, cert: c, key: k}
remote-management: {}
routing: {}
streaming: {}
limits: {}
upstream-timeouts: {}
gemini-api-key:
  - api-key: k
    headers: {A: b}
    models: [{name: m, thinking: {levels: [low]}}]
openai-compatibility:
  - name: n
    base-url: https://x.example
    api-key-entries: [{api-key: k}]
    models: [{name: m, thinking: {}}]
oauth-model-alias: {claude: [{name: a, alias: b}]}
oauth-excluded-models: {claude: [x]}
ampcode:
  upstream-api-keys: [{upstream-api-key: u}]
  model-mappings: [{from: a, to: b}]
"""


def _yaml_keys(value, prefix=""):
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _yaml_keys(sub, path)


def test_shipped_config_mentions_every_key_we_read():
    ctx = Context("everything")
    build_config(EVERYTHING, "everything", ctx=ctx)
    shipped = load_config(str(CONF))
    present = set(_yaml_keys(shipped.raw))
    text = CONF.read_text()
    missing = []
    for path in sorted(ctx.asked):
        if ".headers." in path or path == "generative-language-api-key":
            continue  # header names are the user's; the legacy key is only mentioned
        if "[]" in path:
            # Keys inside list items are documented by commented examples.
            leaf = path.rsplit(".", 1)[-1]
            if not re.search(rf"^\s*#.*\b{re.escape(leaf)}:", text, re.MULTILINE):
                missing.append(path)
        elif path not in present and not path.startswith("oauth-"):
            missing.append(path)
    assert missing == []
    # And the walk above did see the nested sections, so the check means something.
    assert {"limits.max-body-size", "ampcode.fallback", "openai-compatibility[].name"} <= ctx.asked


# -- the loader against PyYAML's own -------------------------------------------------------

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(_names, _values, max_size=6), st.booleans())
def test_loader_builds_what_safe_load_builds_and_knows_the_lines(data, flow):
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=flow, allow_unicode=True)
    root, notes = load_tree(text, "x")
    assert plain(root) == yaml.safe_load(text)
    assert notes == []
    lines = text.splitlines()
    for key in root:
        if key in root.texts:  # a scalar: it starts on its key's line
            assert key in lines[root.lines[key] - 1]
