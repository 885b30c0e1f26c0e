# -*- test-case-name: tests.security.test_admission -*-
"""What is decided before a request reaches the Resource tree, from its headers alone.

`LimitedHTTPChannel` asks `Admission` once per connection (connection caps) and once per
request when its headers are complete, before a byte of the body is read: Host and
Origin (`cliproxy.web.origin`), a peer locked out for guessing keys (429), and, for an API
request that carries a body, the client key itself (401). A refused request costs no body
buffering and reaches no resource.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.http_headers import Headers

from cliproxy.config import Config
from cliproxy.web.guard import judge_keys, offered_keys
from cliproxy.web.origin import cors_headers, host_allowed, judge_origin
from cliproxy.web.paths import normalise

log = Logger(namespace="cliproxy.security")

#: first path segments whose requests need a client key when api-keys is set
KEY_HEADS = frozenset({"v1", "v1beta", "api"})
WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given instead of serving: status, message, extra headers."""

    status: int
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What is known of a request once its headers are in."""

    method: bytes
    target: bytes
    headers: Headers
    peer: str
    on_loopback: bool
    secure: bool
    has_body: bool


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request that may proceed; `cors` is its `Access-Control-Allow-Origin` (or None)."""

    cors: bytes | None = None


class KeyFailures:
    """Wrong client keys per peer address, in a sliding minute; a burst locks the peer out.

    Memory is bounded: at most `max_peers` addresses are remembered (oldest forgotten).
    """

    def __init__(
        self,
        clock: IReactorTime,
        per_minute: Callable[[], int],
        lockout: Callable[[], float],
        max_peers: int = 4096,
    ) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.lockout = lockout
        self.max_peers = max_peers
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: dict[str, float] = {}

    def failed(self, peer: str) -> None:
        limit = self.per_minute()
        if limit <= 0:
            return
        now = self.clock.seconds()
        times = self._seen.pop(peer, None) or deque()
        times.append(now)
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        self._seen[peer] = times
        if len(self._seen) > self.max_peers:
            self._seen.popitem(last=False)
        if len(times) >= limit:
            self._locked[peer] = now + self.lockout()
            times.clear()
            log.warn(
                "peer {peer} sent {n} wrong client keys within a minute: locked out for {s}s",
                peer=peer,
                n=limit,
                s=self.lockout(),
            )
            if len(self._locked) > self.max_peers:
                del self._locked[next(iter(self._locked))]

    def locked_for(self, peer: str) -> float | None:
        """Seconds until `peer` may try again, or None when it is not locked out."""
        until = self._locked.get(peer)
        if until is None:
            return None
        left = until - self.clock.seconds()
        if left <= 0:
            del self._locked[peer]
            return None
        return left


def _one(headers: Headers, name: bytes) -> bytes | None:
    values = headers.getRawHeaders(name)
    return values[0] if values and len(values) == 1 else None


class Admission:
    """The header-time checks, reading the live config on each use."""

    def __init__(self, config: Callable[[], Config], clock: IReactorTime) -> None:
        self.config = config
        self.failures = KeyFailures(
            clock,
            lambda: config().limits.key_failures_per_minute,
            lambda: config().limits.key_lockout_seconds,
        )

    def admit_connection(self, total: int, from_peer: int) -> Refusal | None:
        """Refuse a new connection when `total` or `from_peer` open ones reach their cap."""
        limits = self.config().limits
        if limits.max_connections and total >= limits.max_connections:
            why = f"cliproxy has {total} connections open, its limit (limits.max-connections)"
        elif limits.max_connections_per_peer and from_peer >= limits.max_connections_per_peer:
            why = f"your address has {from_peer} connections open, the per-peer limit"
        else:
            return None
        return Refusal(503, why + "; retry shortly", ((b"retry-after", b"1"),))

    def check(self, head: RequestHead) -> Refusal | Admitted:
        config = self.config()
        host = _one(head.headers, b"host")
        if not host_allowed(host, config.allowed_hosts, head.on_loopback):
            shown = (host or b"").decode("latin-1", "replace")[:100]
            return Refusal(
                421,
                f"this server does not answer for host {shown!r}; use http://localhost or add "
                "the name to allowed-hosts in config.yaml",
            )
        origins = head.headers.getRawHeaders(b"origin")
        own = ("https://" if head.secure else "http://") + (host or b"").decode("latin-1")
        verdict = judge_origin(
            origins[0] if origins else None,
            _one(head.headers, b"sec-fetch-site"),
            own,
            config.cors.allow_origins,
        )
        if not verdict.allowed or (origins and len(origins) > 1):
            return Refusal(403, verdict.reason or "more than one Origin header")
        refused = self._check_key(head, config)
        if refused is None:
            return Admitted(verdict.cors)
        if verdict.cors is not None:
            # an allowed browser origin must be able to read why it was refused
            cors = tuple(cors_headers(verdict.cors, preflight=False))
            return Refusal(refused.status, refused.message, refused.headers + cors)
        return refused

    def _check_key(self, head: RequestHead, config: Config) -> Refusal | None:
        if not config.api_keys or head.method == b"OPTIONS":
            return None
        path, _, query = head.target.partition(b"?")
        offered = offered_keys(head.headers, parse_qs(query) if query else {})
        segments = normalise(path)
        raw_head = path.split(b"/")[1:2]
        heads = {segments[0] if segments else "", raw_head[0].decode("latin-1") if raw_head else ""}
        needs_key = len(segments) >= 2 and bool(heads & KEY_HEADS)
        if not (needs_key or offered):
            return None
        wait = self.failures.locked_for(head.peer)
        if wait is not None:
            seconds = math.ceil(wait)
            return Refusal(
                429,
                f"too many wrong API keys from your address; try again in {seconds}s",
                ((b"retry-after", b"%d" % seconds),),
            )
        if not (needs_key and head.has_body):
            return None  # the tree decides (a 404 or 405 stays one)
        auth = judge_keys(offered, config.api_keys)
        if auth.ok:
            return None
        if offered:
            self.failures.failed(head.peer)
        return Refusal(401, auth.message)


__all__ = ["Admission", "Admitted", "KeyFailures", "Refusal", "RequestHead"]
