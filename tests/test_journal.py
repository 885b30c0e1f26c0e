"""cliproxy.journal: Twisted log events as `<N>`-prefixed lines for journald."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from twisted.logger import Logger, LogLevel, LogPublisher

from cliproxy import journal

LINE = re.compile(rb"^<([0-7])>(.*)$")


def logged(emit) -> list[tuple[int, str]]:
    """Run `emit(logger)` against a JournalObserver; (priority, text) per output line."""
    out = io.BytesIO()
    publisher = LogPublisher(journal.JournalObserver(out))
    emit(Logger(namespace="cliproxy.test", observer=publisher))
    lines = []
    for raw in out.getvalue().splitlines():
        match = LINE.match(raw)
        assert match, f"line without a priority prefix: {raw!r}"
        lines.append((int(match.group(1)), match.group(2).decode()))
    return lines


def test_levels_map_to_syslog_priorities():
    def emit(log):
        log.debug("d {n}", n=1)
        log.info("i {n}", n=2)
        log.warn("w {n}", n=3)
        log.error("e {n}", n=4)
        log.critical("c {n}", n=5)

    assert logged(emit) == [
        (7, "[cliproxy.test] d 1"),
        (6, "[cliproxy.test] i 2"),
        (4, "[cliproxy.test] w 3"),
        (3, "[cliproxy.test] e 4"),
        (2, "[cliproxy.test] c 5"),
    ]


def test_no_timestamp_of_our_own():
    [(_, text)] = logged(lambda log: log.info("hello"))
    assert not re.search(r"\d{4}-\d\d-\d\d", text)


def test_a_traceback_keeps_the_priority_on_every_line():
    def emit(log):
        try:
            raise ValueError("boom")
        except ValueError:
            log.failure("upstream {name} failed", name="x", level=LogLevel.error)

    lines = logged(emit)
    assert len(lines) > 3
    assert {p for p, _ in lines} == {3}
    assert lines[0][1] == "[cliproxy.test] upstream x failed"
    texts = [t for _, t in lines]
    assert any(t.startswith("Traceback") for t in texts)
    assert texts[-1].endswith("ValueError: boom")


def test_multi_line_messages_become_several_prefixed_lines():
    assert logged(lambda log: log.warn("one\ntwo\r\n")) == [(4, "[cliproxy.test] one"), (4, "two")]


def test_events_without_a_level_are_info_and_empty_ones_are_dropped():
    assert journal.priority({}) == 6
    assert journal.format_event({"log_format": "", "log_level": LogLevel.info}) == b""


def test_undecodable_text_does_not_break_the_observer():
    out = io.BytesIO()
    journal.JournalObserver(out)({"log_format": "{x}", "x": "\udcff", "log_level": LogLevel.info})
    assert out.getvalue().startswith(b"<6>")


def test_journalctl_priority_warning_would_show_warnings_and_errors_only():
    def emit(log):
        log.info("request served")
        log.warn("config: unknown key")
        log.debug("details")
        log.error("reload failed")

    shown = [t for p, t in logged(emit) if p <= 4]  # journalctl -p warning: priorities 0..4
    assert shown == ["[cliproxy.test] config: unknown key", "[cliproxy.test] reload failed"]


def test_twistd_logger_option_resolves_the_factory(tmp_path):
    """A real twistd run with --logger=cliproxy.journal.observer: every stdout line has a
    priority, print() output included (twistd redirects sys.stdout into the log)."""
    tac = tmp_path / "app.tac"
    tac.write_text(
        textwrap.dedent(
            """
            from twisted.application.service import Application
            from twisted.internet import reactor
            from twisted.logger import Logger
            from twisted.python import log as legacy

            log = Logger(namespace="tac")
            application = Application("journal-test")

            def go():
                log.warn("a warning")
                try:
                    1 / 0
                except ZeroDivisionError:
                    legacy.err(None, "legacy failure")
                log.error("an error")
                print("printed")
                reactor.stop()

            reactor.callWhenRunning(go)
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "--logger=cliproxy.journal.observer",
            "--python",
            str(tac),
        ],
        cwd=tmp_path,
        # the cliproxy under test, not an older installed copy
        env={**os.environ, "PYTHONPATH": str(Path(journal.__file__).parent.parent)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), result.stdout
    assert b"<4>[tac] a warning" in lines
    assert b"<3>[tac] an error" in lines
    assert any(line.startswith(b"<6>") and line.endswith(b"printed") for line in lines)
    # log.err: the message and its traceback, every line at error priority or above
    legacy = [line for line in lines if b"legacy failure" in line or b"ZeroDivision" in line]
    assert legacy and all(int(LINE.match(line).group(1)) <= 3 for line in legacy)
    warnings = [line for line in lines if int(LINE.match(line).group(1)) <= 4]
    assert warnings[0] == b"<4>[tac] a warning" and warnings[-1] == b"<3>[tac] an error"
    assert all(b"Traceback" in w or not w.startswith(b"<6>") for w in warnings)
