"""Where a client request meets models, credentials and executors.

`Router.handle` (`router`) resolves the model, tries credentials in the pool's order,
fails over while nothing has been sent to the client, benches failing credentials
(`classify`), and hands back either a finished JSON answer in the client's format or an
open upstream stream with the translator that turns it into the client's format
(`results`). One credential's try is an `attempt.Attempt`; the bodies it translates are
`bodies`' business.
"""

from cliproxy.routing.attempt import (
    ERROR_BODY_LIMIT,
    RESPONSE_BODY_LIMIT,
    passthrough_headers,
)
from cliproxy.routing.classify import is_request_invalid, parse_retry_after
from cliproxy.routing.results import (
    BootstrapSink,
    ClientRequest,
    EventTranslator,
    JSONResult,
    RouteError,
    StreamResult,
)
from cliproxy.routing.router import Router

__all__ = [
    "ERROR_BODY_LIMIT",
    "RESPONSE_BODY_LIMIT",
    "BootstrapSink",
    "ClientRequest",
    "EventTranslator",
    "JSONResult",
    "RouteError",
    "Router",
    "StreamResult",
    "is_request_invalid",
    "parse_retry_after",
    "passthrough_headers",
]
