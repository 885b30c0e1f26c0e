"""CLIProxyAPI keys that load but do nothing are reported: `accepted but not supported`."""

from __future__ import annotations

from pathlib import Path

from cliproxy.config import parse_config
from cliproxy.config._unsupported import INERT

ROOT = Path(__file__).resolve().parents[2]


def test_inert_and_kept_keys_are_reported_once_each_and_off_values_are_not():
    config = parse_config(
        "request-log: true\nws-auth: false\nquota-exceeded: {switch-project: true}\n"
        "pprof: {enable: false}\ncommercial-mode: true\nstreaming: {bootstrap-retries: 2}\n",
        "config.yaml",
    )
    # request-log (cliproxy.observe.requestlog) and streaming.bootstrap-retries (routing)
    # are acted on: not reported
    assert config.warnings == (
        "config.yaml: accepted but not supported: quota-exceeded (line 3)",
        "config.yaml: accepted but not supported: commercial-mode",
    )


def test_check_config_prints_them(tmp_path, capsys):
    from cliproxy.cli import check_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "host: 127.0.0.1\nport: 8317\n"
        "claude-header-defaults: {user-agent: x, stabilize-device-profile: true}\n"
    )
    assert check_config(str(path)) == 0
    err = capsys.readouterr().err
    assert "accepted but not supported: claude-header-defaults.stabilize-device-profile" in err
    assert "claude-header-defaults.user-agent" not in err


def test_inert_keys_have_no_reader_outside_the_config_package():
    """Whoever makes one work must take it off the INERT list (management only shows it)."""
    sources = [
        p
        for p in (ROOT / "cliproxy").rglob("*.py")
        if "config" not in p.parts and p.name != "settings.py"
    ]
    text = "\n".join(p.read_text() for p in sources)
    for key, attribute in INERT.items():
        assert f".{attribute}" not in text, f"{key} is read somewhere: drop it from INERT"
