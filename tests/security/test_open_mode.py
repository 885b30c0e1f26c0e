"""Open mode and CLIProxyAPI's example keys: refused off loopback, said once on loopback."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from cliproxy.config import ConfigError, check_exposure, parse_config
from cliproxy.config.exposure import exposure_notes
from tests.amp.kit import messages

LOOPBACK = "tcp:port=8317:interface=127.0.0.1"
EXPOSED = "tcp:port=8317:interface=0.0.0.0"


def test_open_mode_on_loopback_is_said_once_and_refused_elsewhere():
    config = parse_config("port: 8317\n")
    [note] = exposure_notes(config, LOOPBACK)
    assert "api-keys is empty" in note
    with pytest.raises(ConfigError):
        check_exposure(config, EXPOSED)


def test_example_keys_warn_on_loopback_and_are_refused_elsewhere():
    config = parse_config("api-keys: [your-api-key-1]\n")
    [note] = exposure_notes(config, LOOPBACK)
    assert "example key 'your-api-key-1'" in note
    with pytest.raises(ConfigError):
        check_exposure(config, EXPOSED)


def test_real_keys_need_no_note():
    assert exposure_notes(parse_config("api-keys: [sk-mine-77]\n"), LOOPBACK) == []


def test_the_daemon_start_logs_open_mode_once(tmp_path):
    from cliproxy.tap import Options, makeService

    path = tmp_path / "config.yaml"
    path.write_text(f"host: 127.0.0.1\nport: 8317\nauth-dir: {tmp_path}\n")
    options = Options()
    options.parseOptions(["--config", str(path)])
    with capturedLogs() as events:
        makeService(options, reactor=MemoryReactorClock())
    lines = [line for line in messages(events) if "api-keys is empty" in line]
    assert len(lines) == 1
