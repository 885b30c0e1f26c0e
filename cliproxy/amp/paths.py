# -*- test-case-name: tests.amp.test_management -*-
"""Which Amp route a request path is, decided on the normalised path.

Twisted hands resources the path segments with %-escapes undone but `.`/`..` and empty
segments kept, so `/threads/../api/user` would reach the `threads` resource. Every Amp
decision (auth bypass, localhost check, where to proxy) is made on the normalised path,
and the normalised path is what the upstream receives: what was checked is what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from cliproxy.web.paths import normalise

#: root-level routes that skip the client-key check (exact or `prefix/...`)
AUTH_BYPASS = ("threads", "auth", "docs", "settings")
#: root-level feeds Amp reads
FEEDS = ("threads.rss", "news.rss")
#: the first path segments the Amp subtree is mounted at
MOUNTS = ("api", "threads", "auth", "docs", "settings", "actors", *FEEDS)

_SAFE = "!$&'()*+,;=:@~"

__all__ = ["AmpRoute", "classify", "has_trailing_slash", "join", "normalise"]


def has_trailing_slash(raw_path: bytes) -> bool:
    path = raw_path.split(b"?", 1)[0]
    return len(path) > 1 and path.endswith(b"/")


def join(segments: tuple[str, ...] | list[str], trailing_slash: bool = False) -> str:
    """The path for the upstream: `/` + escaped segments (+ `/` when the client sent one,
    e.g. Amp's `/actors/gateway/.../websocket/?...`)."""
    path = "/" + "/".join(quote(s, safe=_SAFE) for s in segments)
    if trailing_slash and segments:
        path += "/"
    return path


@dataclass(frozen=True)
class AmpRoute:
    """What the Amp subtree does with a path.

    kind: `provider` (model APIs, served locally or by fallback), `bridge` (Google
    v1beta1 model call), `management` (proxied to the Amp upstream), `gateway`
    (`/actors/...`, WebSocket pass-through), or `none` (404).
    auth: `required`, `bypass` (no client key needed) or `optional` (checked if offered).
    methods: allowed methods, or None for any.
    """

    kind: str
    auth: str = "required"
    methods: frozenset[bytes] | None = None


NONE = AmpRoute("none")
_GET = frozenset({b"GET", b"HEAD"})


def classify(segments: tuple[str, ...], method: bytes) -> AmpRoute:
    """The route for a normalised path (see `AmpRoute`)."""
    if not segments:
        return NONE
    head = segments[0]
    if head == "api":
        if len(segments) == 1:
            return NONE
        if segments[1] == "provider":
            if len(segments) >= 4 and segments[2].lower() == "google" and segments[3] == "v1beta1":
                rest = "/" + "/".join(segments[4:])
                if method == b"POST" and "/models/" in rest:
                    return AmpRoute("bridge")
                return AmpRoute("management")
            return AmpRoute("provider")
        # every other /api/* group (user, threads, internal, thread-actors, ...) and any
        # method: new Amp releases add groups, and they must keep working through us
        return AmpRoute("management")
    if head in AUTH_BYPASS:
        if head == "auth":
            return AmpRoute("management", auth="bypass")
        return AmpRoute("management", auth="bypass", methods=_GET)
    if head in FEEDS and len(segments) == 1:
        return AmpRoute("management", methods=_GET)
    if head == "actors":
        return AmpRoute("gateway", auth="optional")
    return NONE
