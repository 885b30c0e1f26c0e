# -*- test-case-name: tests.oauth.test_filelock -*-
"""A lock file beside a token file, so that one process refreshes it at a time.

With `workers: N` several cliproxy processes hold the same auth file. Providers rotate
refresh tokens (Claude, Codex): if two processes refreshed at once, one would be left
with a refresh token the provider has already replaced. Each process therefore refreshes
under `flock` on `.<file>.lock` in the same directory (the auth-dir watcher ignores dot
files), and re-reads the token file once it holds the lock.

`flock` is tried without blocking and retried on the reactor's clock, so the reactor
thread never waits on the lock; the caller's Deferred fires once it is held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["Release", "lock_path", "take_lock"]

#: seconds between attempts while another process holds the lock
RETRY_EVERY = 0.05

Release = Callable[[], None]


def lock_path(token_path: str) -> str:
    """`dir/.name.json.lock` for `dir/name.json`."""
    directory, name = os.path.split(token_path)
    return os.path.join(directory, f".{name}.lock")


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def take_lock(
    path: str, clock: IReactorTime, retry_every: float = RETRY_EVERY
) -> defer.Deferred[Release]:
    """Deferred that fires with a release function once the lock at `path` is held.

    Cancelling it while it waits closes the lock file. An `OSError` opening the lock
    file (e.g. a read-only auth-dir) fails the Deferred.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        return defer.fail(e)
    pending: list[IDelayedCall] = []

    def release() -> None:
        os.close(fd)  # closing the only descriptor drops the flock

    def cancel(d: defer.Deferred[Release]) -> None:
        if pending and pending[0].active():
            pending[0].cancel()
        release()

    d: defer.Deferred[Release] = defer.Deferred(cancel)

    def attempt() -> None:
        pending.clear()
        try:
            held = _try_lock(fd)
        except OSError as e:
            release()
            d.errback(e)
            return
        if held:
            d.callback(release)
        else:
            pending.append(clock.callLater(retry_every, attempt))

    attempt()
    return d
