"""Issue 15 item 6: the error messages a user can meet name the cause and the fix."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from cliproxy import cli
from cliproxy.tap import Options, makeService
from tests.fakes import FakeClaude, FakeOpenAI, openai_error_reply
from tests.reliability.kit import call
from tests.serving_kit import config_text, providers

HI = [{"role": "user", "content": "hi"}]


@pytest_twisted.ensureDeferred
async def test_model_missing_from_a_claude_entrys_models_list_says_to_add_it_there(
    start_fake, start_proxy
):
    proxy = start_proxy(providers(claude=start_fake(FakeClaude)))
    body = {"model": "claude-sonnet-4-5-20250929", "messages": HI}
    a = await call(proxy.url, "POST", "/v1/chat/completions", body)
    message = a.json()["error"]["message"]
    assert a.status == 503
    assert "claude-api-key entries list their models (`models:`)" in message
    assert "'claude-sonnet-4-5-20250929' is not among them" in message
    assert "add `- name: claude-sonnet-4-5-20250929` to that entry's models" in message


@pytest_twisted.ensureDeferred
async def test_the_log_says_why_a_request_failed(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    oai.script("POST", "/v1/chat/completions", openai_error_reply(400, "messages: too short"))
    proxy = start_proxy(providers(oai=oai))
    with capturedLogs() as events:
        a = await call(
            proxy.url, "POST", "/v1/chat/completions", {"model": "gpt-fake", "messages": HI}
        )
    assert a.status == 400
    lines = [e for e in events if e.get("log_format", "").startswith("request for {model} failed")]
    assert lines and lines[0]["status"] == 400 and lines[0]["model"] == "gpt-fake"
    assert "messages: too short" in lines[0]["why"]


def test_check_config_names_a_missing_tls_cert_and_the_fix(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(config_text("tls: {enable: true, key: /nonexistent/key.pem}"))
    assert cli.main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "tls.cert: required when tls.enable is true" in err  # the loader's own check
    cert = tmp_path / "missing.pem"
    path.write_text(config_text(f"tls: {{enable: true, cert: {cert}, key: {cert}}}"))
    assert cli.main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"tls.cert: cannot read {cert}: No such file or directory" in err
    assert "fix the path" in err


@pytest.mark.parametrize("argv", [["--config", "config.yaml"], ["-c", "x.yaml"], ["--listen=x"]])
def test_cliproxy_with_daemon_options_says_how_to_start_the_daemon(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "-n cliproxy --config FILE" in err
    assert "cliproxy check-config --config FILE" in err
    assert "invalid choice" not in err


@pytest.mark.parametrize(
    "listen, expected",
    [
        ("tcp:8317:interface=127.0.0.l", "interface '127.0.0.l' is not an IP address"),
        ("tpc:8317", "unknown endpoint kind 'tpc'"),
    ],
)
def test_a_mistyped_listen_is_reported_as_such_not_as_an_api_keys_problem(
    tmp_path, listen, expected
):
    path = tmp_path / "config.yaml"
    path.write_text(f"host: 127.0.0.1\nport: 8317\nauth-dir: {tmp_path}\n")  # no api-keys
    options = Options()
    options.parseOptions(["--config", str(path), "--listen", listen])
    with pytest.raises(SystemExit) as exit:
        makeService(options, MemoryReactorClock())
    message = str(exit.value.code)
    assert expected in message and "--listen" in message
    assert "api-keys" not in message


def test_check_config_refuses_a_client_key_that_can_never_match(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("host: 127.0.0.1\nport: 8317\napi-keys: [sk-good-1, 'sk-clé-2']\n")
    assert cli.main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "api-keys[1] contains non-ASCII or control characters" in err
    assert "use ASCII letters, digits" in err
    options = Options()
    options.parseOptions(["--config", str(path)])
    with pytest.raises(SystemExit) as exit:
        makeService(options, MemoryReactorClock())
    assert "api-keys[1]" in str(exit.value.code)
