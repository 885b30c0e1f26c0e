# -*- test-case-name: tests.test_twisted_compat -*-
"""The only place cliproxy touches Twisted internals, each where no public hook exists.

Checked on Twisted 22.4 (Debian 12's python3-twisted) and 24.7 to 26.10 from PyPI; both CI
lines run tests/test_twisted_compat.py, which fails if a name moves.
"""

from __future__ import annotations

import inspect

from twisted.enterprise import adbapi
from twisted.web import http


def _accepts_form_flag() -> bool:
    try:
        return "parsePOSTFormSubmission" in inspect.signature(http.Request.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return False


#: Twisted >= 24 takes `parsePOSTFormSubmission` (a public constructor argument) and parses
#: every POST's Content-Type looking for form uploads unless told not to; cliproxy never
#: reads form arguments (5-10 % of CPU per request, bench/RESULTS.md). 22.4 has no such
#: parsing to turn off, and no argument.
FORM_PARSING_FLAG = _accepts_form_flag()


def request_init_kwargs() -> dict[str, bool]:
    """Keyword arguments for `server.Request.__init__` that turn form parsing off."""
    return {"parsePOSTFormSubmission": False} if FORM_PARSING_FLAG else {}


def pipelined_bytes(channel: http.HTTPChannel) -> bytes:
    """Bytes the channel read past the current request and holds for the next one.

    When a request is upgraded to a WebSocket tunnel, whatever the client already sent
    after the upgrade request sits in HTTPChannel's `_dataBuffer` (22.4 to 26.10: a list of
    bytes). Twisted has no public way to take it, and losing it would drop the client's
    first frames.
    """
    held = getattr(channel, "_dataBuffer", None)
    if not isinstance(held, list):
        return b""
    return b"".join(held)


class QuietDBConnection(adbapi.Connection):
    """`adbapi.Connection` whose rollback after the database went away says nothing.

    adbapi logs a traceback ("Rollback failed") for every call on a connection the server
    dropped; cliproxy's store logs one line itself and retries. On rollback failure the
    dead connection leaves the pool, so the next call on this thread opens a new one.
    Uses `_connection` and `_pool`, as in Twisted 22.4 through 26.x.
    """

    def rollback(self) -> None:
        conn = self._connection
        try:
            if conn is not None:
                conn.rollback()
        except Exception:
            self._pool.disconnect(conn)


__all__ = ["FORM_PARSING_FLAG", "QuietDBConnection", "pipelined_bytes", "request_init_kwargs"]
