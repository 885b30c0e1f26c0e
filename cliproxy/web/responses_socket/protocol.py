# -*- test-case-name: tests.websocket.test_socket -*-
"""The Responses WebSocket session: client frames in, Responses events out as text frames.

Each `response.create`/`response.append` becomes one ordinary Responses call through the
router (`stream: true`), so any credential can serve it: Codex, Claude, Gemini or an
OpenAI-compatible one, over plain HTTP SSE upstream. Every event of the answer goes back
as one JSON text frame; failures become an `error` event in Responses shape and the
session stays open. Turns run one at a time in the order the frames came.

The credential that answered the first turn is tried first for every later turn of the
session (it moves only when that credential cannot serve, e.g. while it cools down).

Frames the session cannot take close it: a binary frame (1003), a text frame that is not
JSON (1007), a message over the size limit (1009, checked by autobahn from the frame
header). Closing, or the client going away, cancels the turn in progress and closes its
upstream connection.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cliproxy.formats import Family, Format
from cliproxy.formats.errors import error_object
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.routing import ClientRequest, JSONResult, RouteError, Router, StreamResult
from cliproxy.web.errors import json_bytes
from cliproxy.web.responses_socket.relay import SocketRelay, TurnEnd
from cliproxy.web.responses_socket.transcript import FrameRefused, Transcript, Turn, warmup_events
from cliproxy.web.sessions import ILongSession, Sessions

log = Logger()

#: close codes (RFC 6455 7.4.1)
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
TOO_BIG = 1009
#: the daemon is shutting down (sent between turns during the drain)
GOING_AWAY = 1001
GOING_AWAY_REASON = "cliproxy is shutting down; reconnect to go on"
#: frames queued behind a turn in progress; more than this closes the session (1008)
MAX_QUEUED = 16
POLICY_VIOLATION = 1008

TURN_STATE_HEADER = "x-codex-turn-state"


@dataclass(frozen=True)
class SessionContext:
    """What a session needs from the upgrade request and from the app."""

    router: Router
    clock: IReactorTime
    idle_timeout: float
    client_key: str | None
    #: client headers routing may use (User-Agent, session ids, ...)
    headers: dict[str, str]
    #: the connection's bookkeeping in the Site, run once when it closes
    closed: Callable[[], None]
    #: the Site's long-lived sessions, which the graceful drain asks to go away
    sessions: Sessions | None = None


def error_event(status: int, error: JSONObject) -> bytes:
    """An `error` event: `{"type":"error","status":N,"error":{...}}` (the OpenAI shape)."""
    inner = error.get("error") if isinstance(error.get("error"), dict) else error
    return json_bytes({"type": "error", "status": status, "error": inner})


@implementer(ILongSession)
class ResponsesSocketProtocol(WebSocketServerProtocol):
    """One client's Responses WebSocket session (see the module docstring)."""

    def __init__(self, context: SessionContext) -> None:
        WebSocketServerProtocol.__init__(self)
        self.context = context
        self.transcript = Transcript()
        self.pinned: str | None = None
        self.queue: deque[JSON] = deque()
        self.busy = False
        self.gone = False
        self._call: defer.Deferred[Any] | None = None
        self._relay: SocketRelay | None = None
        self._bookkept = False
        #: the drain asked this session to end after the turn in progress
        self.leaving = False
        self._registered = False

    def limit_messages(self, size: int) -> None:
        """Refuse (1009) messages and frames over `size` bytes, from their headers."""
        self.maxMessagePayloadSize = size
        self.maxFramePayloadSize = size

    # -- autobahn callbacks ----------------------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> tuple[None, dict[str, str]]:
        headers = {}
        state = request.headers.get(TURN_STATE_HEADER)
        if state:  # the client's sticky turn state is kept across reconnects
            headers[TURN_STATE_HEADER] = state
        return None, headers

    def onOpen(self) -> None:
        log.info("responses websocket open from {peer}", peer=self.peer)
        if self.context.sessions is not None:
            self._registered = True
            self.context.sessions.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N803
        if self.gone:
            return
        if isBinary:
            self._shut(UNSUPPORTED_DATA, "binary frames are not accepted; send JSON text frames")
            return
        try:
            frame = json.loads(payload)
        except ValueError:
            self._shut(INVALID_PAYLOAD, "a text frame is not valid JSON")
            return
        if len(self.queue) >= MAX_QUEUED:
            self._shut(POLICY_VIOLATION, f"more than {MAX_QUEUED} requests waiting")
            return
        self.queue.append(frame)
        self._next()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N803
        self._stop_all()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        try:
            WebSocketServerProtocol.connectionLost(self, reason)
        finally:
            self._stop_all()
            if not self._bookkept:
                self._bookkept = True
                self.context.closed()
                if self._registered and self.context.sessions is not None:
                    self.context.sessions.closed(self)

    # -- the drain (ILongSession) ----------------------------------------------------------

    def going_away(self) -> None:
        """End after the turn in progress (now, between turns) with 1001."""
        self.leaving = True
        if not self.busy:
            self._shut(GOING_AWAY, GOING_AWAY_REASON)

    def close_now(self) -> None:
        """The grace period is over: stop the turn, send 1001 and close the connection."""
        self.leaving = True
        if not self.gone:
            self._shut(GOING_AWAY, GOING_AWAY_REASON)
        if self.transport is not None:
            self.transport.loseConnection()  # flushes the close frame; no wait for its reply

    # -- turns -----------------------------------------------------------------------------

    def _next(self) -> None:
        if self.leaving and not self.busy and not self.gone:
            # frames still queued are not served: the client replays them after reconnecting
            self._shut(GOING_AWAY, GOING_AWAY_REASON)
            return
        while not self.busy and not self.gone and self.queue:
            frame = self.queue.popleft()
            try:
                turn = self.transcript.turn_for(frame)
            except FrameRefused as e:
                error = error_object(Family.OPENAI, 400, e.message, code=e.code)
                self._emit(error_event(400, error))
                continue
            if turn.warmup:
                rid, events = warmup_events(turn.model)
                for event in events:
                    self._emit(json_bytes(event))
                self.transcript.answered(turn.body, rid, [])
                continue
            self._start(turn)

    def _start(self, turn: Turn) -> None:
        ctx = self.context
        creq = ClientRequest(
            Format.OPENAI_RESPONSES,
            turn.model,
            turn.body,
            True,
            headers=dict(ctx.headers),
            client_key=ctx.client_key,
            pinned=self.pinned,
        )
        self.busy = True
        d = defer.ensureDeferred(ctx.router.handle(creq))
        self._call = d
        d.addCallbacks(self._answer, self._failed, callbackArgs=(turn, creq), errbackArgs=(creq,))
        d.addErrback(self._broken)

    def _answer(self, result: JSONResult | StreamResult, turn: Turn, creq: ClientRequest) -> None:
        self._call = None
        if creq.served_by:
            self.pinned = creq.served_by
        if isinstance(result, JSONResult):  # the router streams a stream request; be safe
            body = json.loads(result.body)
            self._emit(json_bytes({"type": "response.completed", "response": body}))
            self._ended(turn, TurnEnd(True, str(body.get("id") or ""), body.get("output") or []))
            return
        relay = SocketRelay(
            self,
            result,
            self.context.clock,
            self.context.idle_timeout,
            lambda end: self._ended(turn, end),
        )
        self._relay = relay
        relay.start()
        if self.gone:
            relay.client_left()

    def _failed(self, failure: Failure, creq: ClientRequest) -> None:
        self._call = None
        if failure.check(defer.CancelledError) or self.gone:
            return
        if failure.check(RouteError):
            e = failure.value
            assert isinstance(e, RouteError)
            status = e.status
            obj = e.body or error_object(Family.OPENAI, status, e.message, type=e.type, code=e.code)
            log.info(
                "websocket turn for {model} failed: {status} {why}",
                model=creq.model,
                status=status,
                why=e.log_reason(),
            )
        else:
            log.failure("unexpected error serving a websocket turn", failure)
            status = 500
            obj = error_object(Family.OPENAI, 500, "internal error in cliproxy; see its log")
        self._emit(error_event(status, obj))
        self.busy = False
        self._next()

    def _broken(self, failure: Failure) -> None:
        log.failure("while answering a websocket turn", failure)
        self._shut(1011, "internal error in cliproxy; see its log")

    def _ended(self, turn: Turn, end: TurnEnd) -> None:
        self._relay = None
        if end.completed:
            self.transcript.answered(turn.body, end.response_id, end.output)
        self.busy = False
        self._next()

    # -- the connection --------------------------------------------------------------------

    def send_event(self, data: bytes) -> None:
        """One Responses event (JSON bytes) as one text frame."""
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if self.gone:
            return
        if self.state != self.STATE_OPEN:  # the client's close frame came: nothing more is sent
            self._stop_all()
            return
        self.sendMessage(data, isBinary=False)  # type: ignore[no-untyped-call]

    def _shut(self, code: int, reason: str) -> None:
        log.info("closing a responses websocket ({code}): {why}", code=code, why=reason)
        self._stop_all()
        # autobahn's sendClose takes only 1000 and 3000-4999; the RFC codes go out as frames
        self.sendCloseFrame(code, reason.encode("utf-8")[:123], isReply=False)

    def _stop_all(self) -> None:
        """The client closed or left: stop everything in progress."""
        if self.gone:
            return
        self.gone = True
        self.queue.clear()
        if self._call is not None:
            call, self._call = self._call, None
            call.cancel()
        if self._relay is not None:
            self._relay.client_left()
