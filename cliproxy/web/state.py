# -*- test-case-name: tests.web.test_state -*-
"""What one request carries through the Resource tree, the Twisted way.

`twisted.web.server.Request` is `Componentized`: instead of new attributes on the request
(`request.client_key = ...`), every fact a later resource needs lives in one typed
`RequestState`, stored as the request's `IRequestState` component. `state_of(request)`
returns it, creating it for requests that did not come through `CliproxySite` (tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zope.interface import Interface, implementer


class IRequestState(Interface):
    """Marker: the component holding a request's `RequestState`."""


@implementer(IRequestState)
@dataclass
class RequestState:
    """Per-request facts.

    Attributes:
        request_id: sent back as `X-Request-Id` and logged.
        started: reactor time when the request object was made.
        client_key: the cliproxy key the guard accepted (None: open access or none needed).
        log_fields: extra fields for the access event (`model`, ...).
        logged: the access event was written.
        gone: the client left before the answer was finished.
        segments: the normalised path segments (set for Amp routes).
        inject_upstream_key: Amp: add the configured upstream key when proxying.
        key_failed: a client key was offered and refused (counted against the peer).
        cors_origin: the `Access-Control-Allow-Origin` an allowed cross origin gets.
        upstream: the upstream calls made for it (`routing.UpstreamExchange`), for the
            request log.
    """

    request_id: str = "-"
    started: float | None = None
    client_key: str | None = None
    log_fields: dict[str, str] = field(default_factory=dict)
    logged: bool = False
    gone: bool = False
    segments: tuple[str, ...] | None = None
    inject_upstream_key: bool = True
    key_failed: bool = False
    cors_origin: bytes | None = None
    upstream: list[Any] = field(default_factory=list)


def state_of(request: object) -> RequestState:
    """The request's `RequestState` (made and attached on first use)."""
    get = getattr(request, "getComponent", None)
    if get is None:
        raise TypeError(f"{type(request).__name__} cannot carry components")
    state = get(IRequestState)
    if state is None:
        state = RequestState()
        request.setComponent(IRequestState, state)  # type: ignore[attr-defined]
    assert isinstance(state, RequestState)
    return state


def client_gone(request: object) -> bool:
    """Whether the client left, or the answer is already complete."""
    return state_of(request).gone or bool(getattr(request, "finished", False))
