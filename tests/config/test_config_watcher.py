"""The live config: ConfigStore swaps and notifies; ConfigWatcher reloads edits (task.Clock)."""

from __future__ import annotations

import os
import signal

import pytest
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent

from cliproxy.config import load_config, parse_config
from cliproxy.config.watcher import ConfigStore, ConfigWatcher


class Logs(list):
    """Log events from one component, readable as text."""

    def texts(self, level: LogLevel | None = None) -> list[str]:
        return [formatEvent(e) for e in self if level is None or e["log_level"] == level]


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\napi-keys: [k1]\n")
    store = ConfigStore(load_config(str(path)))
    clock = Clock()
    watcher = ConfigWatcher(store, str(path), clock, interval=1.0)
    logs = Logs()
    watcher.log = Logger(observer=logs.append)
    store.log = Logger(observer=logs.append)
    changes = []
    store.subscribe(lambda old, new: changes.append((old, new)))
    watcher.startService()
    yield path, store, clock, watcher, logs, changes
    if watcher.running:
        watcher.stopService()


def write(path, text):
    path.write_text(text)


# -- ConfigStore ---------------------------------------------------------------------------


def test_store_replace_notifies_with_old_and_new():
    first, second = parse_config("port: 1\n"), parse_config("port: 2\n")
    store = ConfigStore(first)
    seen = []
    store.subscribe(lambda old, new: seen.append((old.port, new.port, store.current.port)))
    store.replace(second)
    assert store.current is second
    assert seen == [(1, 2, 2)]  # subscribers already see the new snapshot


def test_unsubscribe_stops_notifications():
    store = ConfigStore(parse_config("port: 1\n"))
    seen = []
    unsubscribe = store.subscribe(lambda old, new: seen.append(new.port))
    store.replace(parse_config("port: 2\n"))
    unsubscribe()
    unsubscribe()  # twice is harmless
    store.replace(parse_config("port: 3\n"))
    assert seen == [2]


def test_failing_subscriber_is_logged_and_others_still_run():
    store = ConfigStore(parse_config("port: 1\n"))
    logs = Logs()
    store.log = Logger(observer=logs.append)
    seen = []

    def broken(old, new):
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    store.subscribe(lambda old, new: seen.append(new.port))
    store.replace(parse_config("port: 2\n"))
    assert store.current.port == 2 and seen == [2]
    failures = [e for e in logs if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)


# -- ConfigWatcher -------------------------------------------------------------------------


def test_edit_is_picked_up_on_the_next_tick(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [k1, k2]\n")
    clock.advance(1)
    assert store.current.api_keys == ("k1", "k2")
    assert [(old.api_keys, new.api_keys) for old, new in changes] == [(("k1",), ("k1", "k2"))]
    assert any("config reloaded" in t for t in logs.texts(LogLevel.info))


def test_nothing_happens_before_the_interval(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [k9]\n")
    clock.advance(0.5)
    assert changes == []
    clock.advance(0.5)
    assert store.current.api_keys == ("k9",)


def test_bad_edit_keeps_the_old_config_and_logs_one_line(setup):
    path, store, clock, watcher, logs, changes = setup
    good = store.current
    write(path, "port: 8317\napi-keys: [k1, k2\n")
    clock.advance(1)
    assert store.current is good and changes == []
    errors = logs.texts(LogLevel.error)
    assert len(errors) == 1
    assert "keeping the current config" in errors[0] and "not valid YAML" in errors[0]
    assert "(line " in errors[0]
    # The same bad content is not reported again on every tick.
    clock.advance(1)
    clock.advance(1)
    assert len(logs.texts(LogLevel.error)) == 1
    # Fixing it is picked up.
    write(path, "port: 8317\napi-keys: [k3]\n")
    clock.advance(1)
    assert store.current.api_keys == ("k3",)


def test_invalid_value_is_logged_with_key_path(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\nrouting:\n  strategy: random\n")
    clock.advance(1)
    assert changes == []
    assert any("routing.strategy" in t and "(line 3)" in t for t in logs.texts(LogLevel.error))


def test_unchanged_content_does_not_reload(setup):
    path, store, clock, watcher, logs, changes = setup
    text = path.read_text()
    write(path, text)  # rewritten, same bytes
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # and an old, different mtime
    clock.advance(1)
    clock.advance(1)
    assert changes == []
    assert logs.texts(LogLevel.info) == []


def test_empty_file_is_ignored_with_a_warning(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "")
    clock.advance(1)
    assert changes == [] and store.current.api_keys == ("k1",)
    assert any("is empty" in t for t in logs.texts(LogLevel.warn))


def test_missing_file_is_reported_once_then_recovered(setup):
    path, store, clock, watcher, logs, changes = setup
    path.unlink()
    clock.advance(1)
    clock.advance(1)
    assert sum("is missing" in t for t in logs.texts(LogLevel.warn)) == 1
    write(path, "port: 8317\napi-keys: [back]\n")
    clock.advance(1)
    assert store.current.api_keys == ("back",)


def test_listener_change_says_restart_needed(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 9000\napi-keys: [k1]\n")
    clock.advance(1)
    assert store.current.port == 9000  # the snapshot changes; the socket does not
    warnings = logs.texts(LogLevel.warn)
    assert any("restart" in t and "tcp:port=8317" in t and "tcp:port=9000" in t for t in warnings)


def test_other_changes_do_not_mention_restart(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [k1]\ndebug: true\n")
    clock.advance(1)
    assert store.current.debug is True
    assert not any("restart" in t for t in logs.texts())


def test_new_warnings_are_logged(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\ncolour: blue\n")
    clock.advance(1)
    assert any("colour: unknown key" in t for t in logs.texts(LogLevel.warn))


def test_reload_reads_now_and_reports_success(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [hup]\n")
    assert watcher.reload() is True
    assert store.current.api_keys == ("hup",)
    write(path, "port: nope\n")
    assert watcher.reload() is False
    assert store.current.api_keys == ("hup",)
    # The timer does not re-apply what reload() already did.
    write(path, "port: 8317\napi-keys: [hup]\n")
    assert watcher.reload() is True
    clock.advance(1)
    assert len(changes) == 2


def test_stop_service_stops_polling(setup):
    path, store, clock, watcher, logs, changes = setup
    watcher.stopService()
    assert clock.getDelayedCalls() == []
    write(path, "port: 8317\napi-keys: [late]\n")
    clock.advance(5)
    assert changes == []


class ThreadSafeRecorder:
    """Stands in for the reactor's callFromThread; records what the signal handler queues."""

    def __init__(self):
        self.calls = []

    def callFromThread(self, f, *args):
        self.calls.append(f)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_queues_a_reload_in_the_reactor(setup):
    path, store, clock, watcher, logs, changes = setup
    reactor = ThreadSafeRecorder()
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert watcher.install_sighup(reactor) is True
        write(path, "port: 8317\napi-keys: [from-hup]\n")
        signal.raise_signal(signal.SIGHUP)
        assert reactor.calls == [watcher.reload]
        reactor.calls[0]()
        assert store.current.api_keys == ("from-hup",)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_unexpected_errors_do_not_stop_the_timer(setup, monkeypatch):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [k1, k2]\n")
    monkeypatch.setattr(store, "replace", lambda new: 1 / 0)
    clock.advance(1)
    assert [e["log_failure"].type for e in logs if "log_failure" in e] == [ZeroDivisionError]
    monkeypatch.undo()
    write(path, "port: 8317\napi-keys: [k3]\n")
    clock.advance(1)
    assert store.current.api_keys == ("k3",)


def test_config_without_a_file_is_not_watched():
    clock = Clock()
    watcher = ConfigWatcher(ConfigStore(parse_config("port: 1\n")), "", clock)
    watcher.startService()
    assert clock.getDelayedCalls() == []
    watcher.stopService()


def test_an_edit_seen_by_the_timer_and_then_sighup_is_applied_or_refused_once(setup):
    path, store, clock, watcher, logs, changes = setup
    write(path, "port: 8317\napi-keys: [once]\n")
    clock.advance(1)  # the timer sees it first
    assert watcher.reload() is False  # then systemctl reload sends SIGHUP
    assert len(changes) == 1 and store.current.api_keys == ("once",)
    write(path, "port: nope\n")
    clock.advance(1)
    assert watcher.reload() is False
    text = [formatEvent(e) for e in logs]
    assert sum("config reloaded" in t for t in text) == 1
    assert sum("config reload failed" in t for t in text) == 1
    assert any("unchanged since it was last read" in t for t in text)
