"""The lock file beside a token file (`workers: N`), driven by `task.Clock`."""

from __future__ import annotations

import os

from twisted.internet import defer, task

from cliproxy.credentials.oauth.filelock import RETRY_EVERY, lock_path, take_lock


def test_lock_path_is_a_dot_file_beside_the_token_file():
    assert lock_path("/a/auth/claude-x.json") == "/a/auth/.claude-x.json.lock"


def test_a_second_taker_waits_on_the_clock_until_the_first_releases(tmp_path):
    clock = task.Clock()
    path = str(tmp_path / ".t.json.lock")
    first = take_lock(path, clock)
    got: list = []
    first.addCallback(got.append)
    assert len(got) == 1
    second = take_lock(path, clock)  # another open file description: flock conflicts
    waiting: list = []
    second.addCallback(waiting.append)
    clock.advance(RETRY_EVERY * 3)
    assert waiting == []
    got[0]()  # release
    clock.advance(RETRY_EVERY)
    assert len(waiting) == 1
    waiting[0]()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_cancelling_a_waiting_taker_stops_its_retries(tmp_path):
    clock = task.Clock()
    path = str(tmp_path / ".t.json.lock")
    held: list = []
    take_lock(path, clock).addCallback(held.append)
    second = take_lock(path, clock)
    second.addErrback(lambda f: f.trap(defer.CancelledError))
    second.cancel()
    assert clock.getDelayedCalls() == []
    held[0]()


def test_an_unwritable_directory_fails_the_deferred(tmp_path):
    failures: list = []
    take_lock(str(tmp_path / "missing" / ".t.lock"), task.Clock()).addErrback(failures.append)
    assert failures and failures[0].check(OSError)
