# -*- test-case-name: tests.amp.test_management -*-
"""`AmpProxy`: the reverse proxy to the Amp upstream (ampcode.com) with Amp's header policy."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.server import Request

from cliproxy.amp.access import NOT_CONFIGURED
from cliproxy.amp.headers import strip_client_key, upstream_headers
from cliproxy.amp.paths import has_trailing_slash, join, normalise
from cliproxy.web.errors import json_bytes
from cliproxy.web.proxy import ProxyCall, ProxyRefused, ReverseProxyResource
from cliproxy.web.state import state_of

log = Logger()

#: the 502 body Amp clients and upstream's tests know
UNREACHABLE = {"error": "amp_upstream_proxy_error", "message": "Failed to reach Amp upstream"}
TIMED_OUT = {"error": "amp_upstream_timeout", "message": "Amp upstream sent no answer in time"}
#: our CORS policy applies, not the upstream's
CORS_RESPONSE_HEADERS = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-methods",
        b"access-control-allow-headers",
        b"access-control-allow-credentials",
        b"access-control-expose-headers",
        b"access-control-max-age",
    }
)


def read_content(request: Request) -> bytes:
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    data: bytes = content.read()
    content.seek(0)
    return data


def content_file(request: Request) -> Any:
    """The client's body as Twisted spooled it (memory or a temp file), rewound, so the
    proxy streams it upstream instead of copying it; b"" when there is none."""
    content = request.content
    if content is None:
        return b""
    content.seek(0, 2)
    if content.tell() == 0:
        return b""
    content.seek(0)
    return content


def request_target(request: Request) -> tuple[str, bytes]:
    """(normalised path, raw query) of a request."""
    segments = state_of(request).segments
    if segments is None:
        segments = normalise(request.path)
    uri = request.uri or b""
    query = uri.split(b"?", 1)[1] if b"?" in uri else b""
    return join(segments, has_trailing_slash(request.path or b"")), query


class AmpProxy(ReverseProxyResource):
    """Forwards a request to the configured Amp upstream, same path, upstream key."""

    drop_response_headers = CORS_RESPONSE_HEADERS

    def __init__(self, module: Any) -> None:
        core = module.core
        super().__init__(
            core.http,
            core.reactor,
            header_timeout=lambda: core.config.upstream_timeouts.headers_seconds,
            idle_timeout=lambda: core.config.streaming.idle_timeout_seconds,
        )
        self.module = module

    def target_url(self, request: Request) -> str:
        upstream = self.module.upstream_url
        if not upstream:
            raise ProxyRefused(503, json_bytes(NOT_CONFIGURED))
        path, query = request_target(request)
        api_keys = self.module.core.config.api_keys
        query = strip_client_key(query, state_of(request).client_key, api_keys)
        url: str = upstream + path
        if query:
            url += "?" + query.decode("latin-1")
        return url

    def build_call(self, request: Request) -> ProxyCall:
        url = self.target_url(request)
        client_key = state_of(request).client_key
        secret = ""
        if state_of(request).inject_upstream_key:
            secret = self.module.upstream_secret(client_key)
        return ProxyCall(
            method=request.method.decode("ascii"),
            url=url,
            headers=upstream_headers(request.requestHeaders, secret),
            body=content_file(request),
            proxy_url=self.module.core.config.proxy_url,
        )

    def error_body(self, status: int, message: str) -> bytes:
        return json_bytes(TIMED_OUT if status == 504 else UNREACHABLE)
