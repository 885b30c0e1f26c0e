# -*- test-case-name: tests.security.test_large_bodies -*-
"""Large request bodies parsed and translated on worker threads, off the reactor.

Parsing and translating a multi-megabyte body of thousands of short turns is seconds of
pure Python; on the reactor thread it would stall every other stream for as long. Bodies
of at least `limits.large-body-size` bytes are handed to a small dedicated `ThreadPool`
of `limits.large-body-threads` threads. At most that many run at once and at most
`limits.large-body-queue` more wait their turn; past that a request gets `Busy` (a 503
with Retry-After), so the memory their parsed forms take stays bounded.

What runs on a thread is a pure function of its arguments: JSON parsing, the `formats`
translators, an executor's `build`. None of them calls Twisted or touches shared mutable
state; the request they work on is not read by the reactor while it waits for them.

The pool runs while this service runs. When it does not (tests that build an `App`
without a service tree, or after shutdown), the work is done inline as before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from cliproxy.config.model import Limits

log = Logger()

T = TypeVar("T")

#: what a client that found the queue full is told to wait before trying again
BUSY_RETRY_SECONDS = 1


_gc_lock = threading.Lock()
_gc_holds = 0
_gc_was_enabled = True


def _without_gc(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` with the cyclic garbage collector paused.

    Parsing and translating a large body allocates hundreds of thousands of objects, which
    sets off full collections; each walks every object in the process holding the GIL,
    stalling the reactor thread for as long. JSON bodies hold no cycles: reference
    counting frees them. The collector runs again (if it ran before) once no large body
    is being worked.
    """
    global _gc_holds, _gc_was_enabled
    with _gc_lock:
        _gc_holds += 1
        if _gc_holds == 1:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
    try:
        return fn(*args)
    finally:
        with _gc_lock:
            _gc_holds -= 1
            if _gc_holds == 0 and _gc_was_enabled:
                gc.enable()


class Busy(Exception):
    """Every worker is busy and the queue is full; `str()` is the message for the client."""


class LargeBodies(Service):
    """The worker threads for large bodies, started and stopped with the daemon.

    Args:
        reactor: where results are handed back (`callFromThread`).
        limits: the live `limits:` section (size threshold and queue length are read per
            call; the thread count when the service starts).
    """

    name = "large-bodies"

    def __init__(self, reactor: IReactorFromThreads, limits: Callable[[], Limits]) -> None:
        self._reactor = reactor
        self._limits = limits
        self._pool: ThreadPool | None = None
        self._slots: defer.DeferredSemaphore | None = None
        self._running = 0
        self._idle: list[defer.Deferred[None]] = []

    # -- the service -----------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        threads = max(1, self._limits().large_body_threads)
        self._pool = ThreadPool(minthreads=0, maxthreads=threads, name="cliproxy-large-bodies")
        self._slots = defer.DeferredSemaphore(threads)
        self._pool.start()

    def stopService(self) -> defer.Deferred[None]:
        """Let the bodies in hand (and those waiting) finish, then stop the threads.

        Requests still in flight during the shutdown grace period keep using the pool;
        joining the threads only once they are idle keeps the reactor free meanwhile.
        """
        Service.stopService(self)
        d = self._when_idle()
        d.addCallback(lambda _: self._stop_pool())
        return d

    def _when_idle(self) -> defer.Deferred[None]:
        if self._running == 0 and not self._waiting():
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle.append(d)
        return d

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        self._slots = None
        if pool is not None:
            pool.stop()

    def _waiting(self) -> int:
        return len(self._slots.waiting) if self._slots is not None else 0

    # -- the work --------------------------------------------------------------------------

    def offloads(self, size: int) -> bool:
        """Whether a body of `size` bytes is worked on a thread (else inline)."""
        threshold = self._limits().large_body_bytes
        return self._pool is not None and 0 < threshold <= size

    async def call(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` for a body of `size` bytes: on a worker thread when it is large.

        Cancelling the caller stops waiting at once; a body already on a thread still
        holds its slot until the thread is done with it, so the bound holds.

        Raises:
            Busy: the workers are busy and `limits.large-body-queue` bodies already wait.
            Whatever `fn` raises.
        """
        if not self.offloads(size):
            return fn(*args)
        slots = self._slots
        assert slots is not None
        if slots.tokens == 0 and len(slots.waiting) >= self._limits().large_body_queue:
            log.warn(
                "large request body refused: {n} already being translated and {q} waiting",
                n=self._running,
                q=len(slots.waiting),
            )
            raise Busy(
                "cliproxy is busy translating other large requests; "
                f"retry in {BUSY_RETRY_SECONDS} s (limits.large-body-queue)"
            )
        await slots.acquire()  # cancelling removes this request from the queue
        result: defer.Deferred[T] = defer.Deferred()
        pool = self._pool
        if pool is None:  # stopped while this body waited (cannot happen with slots held)
            slots.release()
            return fn(*args)
        self._running += 1
        work = deferToThreadPool(self._reactor, pool, _without_gc, fn, *args)
        work.addBoth(self._done, slots, result)
        return await result

    def _done(
        self, outcome: object, slots: defer.DeferredSemaphore, result: defer.Deferred[T]
    ) -> None:
        self._running -= 1
        slots.release()
        if not result.called:  # else the caller left (cancelled) and the outcome is dropped
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)  # type: ignore[arg-type]
        if self._running == 0 and not self._waiting():
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
