# -*- test-case-name: tests.websocket.test_drain -*-
"""Long-lived sessions that outlive their HTTP request (the Responses WebSocket), for the
graceful drain.

An upgraded connection is over for the Site as soon as the upgrade is answered (it is
logged as 101 and leaves `site.active`), yet a turn may be streaming on it for minutes.
The drain asks every open session to go away: a session between turns closes at once
with 1001 (going away), one in a turn finishes that turn first and then closes; frames
that arrive meanwhile are not served (the client replays them on its next connection).
Whatever is still open when the grace period ends is closed without waiting.
"""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import Interface


class ILongSession(Interface):
    """A session the drain can ask to end."""

    def going_away() -> None:
        """Finish the turn in progress, take no new one, then close (1001)."""

    def close_now() -> None:
        """Close at once: the grace period is over."""


class Sessions:
    """The open long-lived sessions of one Site."""

    def __init__(self) -> None:
        self._open: set[ILongSession] = set()
        self._idle_waiters: list[defer.Deferred[None]] = []
        self.draining = False

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, session: ILongSession) -> None:
        self._open.add(session)
        if self.draining:  # upgraded while the drain ran: it goes too
            session.going_away()

    def closed(self, session: ILongSession) -> None:
        self._open.discard(session)
        if not self._open:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def going_away(self) -> defer.Deferred[None]:
        """Ask every session to end; fires once none is open."""
        self.draining = True
        for session in list(self._open):
            session.going_away()
        return self.wait_closed()

    def wait_closed(self) -> defer.Deferred[None]:
        if not self._open:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    def close_all(self) -> None:
        for session in list(self._open):
            session.close_now()


__all__ = ["ILongSession", "Sessions"]
