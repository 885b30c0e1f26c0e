"""The application log file: written while logging-to-file is on, rotated, pruned."""

from __future__ import annotations

from twisted.logger import Logger

from cliproxy.config import load_config
from cliproxy.observe import logfiles
from cliproxy.observe.logfiles import AppLog, AppLogService, log_dir


def _config(tmp_path, body=""):
    path = tmp_path / "config.yaml"
    path.write_text(f"auth-dir: {tmp_path / 'auth'}\n" + body)
    return load_config(str(path))


def test_log_dir_prefers_writable_path_then_beside_the_config(tmp_path):
    config = _config(tmp_path)
    assert log_dir(config, {}) == str(tmp_path / "logs")
    assert log_dir(config, {"WRITABLE_PATH": "/w"}) == "/w/logs"


def test_app_log_writes_only_while_on_and_rotates_within_the_total(tmp_path, monkeypatch):
    live = [_config(tmp_path)]
    observer = AppLog(lambda: live[0], {})
    log = Logger(namespace="t", observer=observer)
    log.info("not written {n}", n=1)
    assert not (tmp_path / "logs").exists()
    live[0] = _config(tmp_path, "logging-to-file: true\nlogs-max-total-size-mb: 1\n")
    log.info("hello {n}", n=2)
    text = (tmp_path / "logs" / "main.log").read_text()
    assert "[info] [t] hello 2" in text
    assert (tmp_path / "logs" / "main.log").stat().st_mode & 0o077 == 0
    monkeypatch.setattr(logfiles, "SEGMENT_BYTES", 300 * 1024)
    for _ in range(12):
        log.info("{pad}", pad="x" * 100 * 1024)
    rotated = logfiles.rotated(str(tmp_path / "logs"))
    assert rotated, "main.log was rotated"
    total = sum(p.stat().st_size for p in (tmp_path / "logs").iterdir())
    assert total <= 1024 * 1024
    observer.close()


def test_the_service_adds_and_removes_its_observer(tmp_path):
    service = AppLogService(lambda: _config(tmp_path, "logging-to-file: true\n"), {})
    service.startService()
    Logger(namespace="svc").info("through the global publisher")
    service.stopService()
    Logger(namespace="svc").info("after stop")
    text = (tmp_path / "logs" / "main.log").read_text()
    assert "through the global publisher" in text and "after stop" not in text
