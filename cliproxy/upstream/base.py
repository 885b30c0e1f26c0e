# -*- test-case-name: tests.upstream.test_executors -*-
"""What every executor shares: the request it builds, and how it is sent.

`Executor.build` is pure (credential + translated body → method, URL, headers, bytes),
so URL and header rules are tested without sockets. `Executor.send` hands the call to
the shared `UpstreamHTTP`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from twisted.web.iweb import IResponse

from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.formats import Format
from cliproxy.upstream.body import accept_encoding
from cliproxy.upstream.headers import CLIENT_CREDENTIAL_HEADERS, HeaderMap, lookup

#: the actions an executor may be asked to build
ACTIONS = ("generate", "count_tokens", "models", "compact")


class UnsupportedAction(Exception):
    """This provider has no upstream call for the action (e.g. codex count_tokens is local)."""


class UpstreamConfigError(ValueError):
    """The credential cannot be used as configured (e.g. codex-api-key without base-url)."""


@dataclass(frozen=True)
class UpstreamCall:
    """One upstream HTTP request, ready to send."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    stream: bool
    provider: str
    action: str = "generate"


def json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to ASCII escapes for lone surrogates."""
    try:
        return _dumps(obj, False).encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(obj, True).encode("ascii")


#: arrays with more items than this are encoded this many items at a time
_PIECEWISE_ITEMS = 256
_ENCODERS = {
    ascii: json.JSONEncoder(ensure_ascii=ascii, separators=(",", ":")) for ascii in (False, True)
}


def _dumps(obj: Any, ascii: bool, levels: int = 3) -> str:
    """`json.dumps(obj)`, compact, byte for byte; but an object holding a long array (a
    conversation of thousands of turns) is encoded a slice per call into the C encoder,
    so a large body built on a worker thread leaves the reactor thread its GIL turns."""
    if levels and isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        if any(isinstance(v, dict) or _long(v) for v in obj.values()):
            members = (
                f"{_ENCODERS[ascii].encode(k)}:{_dumps(v, ascii, levels - 1)}"
                for k, v in obj.items()
            )
            return "{" + ",".join(members) + "}"
    if levels and _long(obj):
        encode, n = _ENCODERS[ascii].encode, _PIECEWISE_ITEMS
        return "[" + ",".join(encode(obj[i : i + n])[1:-1] for i in range(0, len(obj), n)) + "]"
    return _ENCODERS[ascii].encode(obj)


def _long(value: Any) -> bool:
    return isinstance(value, list) and len(value) > _PIECEWISE_ITEMS


def base_url(cred: Credential, default: str | None) -> str:
    """The credential's base URL without a trailing slash, else `default`.

    Raises:
        UpstreamConfigError: no base URL and no default.
    """
    url = (cred.base_url or "").strip().rstrip("/") or (default or "")
    if not url:
        raise UpstreamConfigError(f"credential {cred.label} of kind {cred.kind} has no base-url")
    return url


def path_segment(value: str) -> str:
    """Quote a model name for use inside a URL path."""
    return quote(value, safe="-._~@")


class Executor:
    """One provider kind: URL, headers, auth and wire format of its upstream.

    Subclasses set `provider`, `format`, `kinds` (credential kinds they serve) and
    implement `build`.
    """

    provider: str = ""
    format: Format = Format.OPENAI_CHAT
    #: the upstream is always called with streaming (the router aggregates non-stream calls)
    always_streams: bool = False
    kinds: tuple[str, ...] = ()

    def build(
        self,
        cred: Credential,
        *,
        model: str,
        body: dict[str, Any],
        stream: bool,
        action: str = "generate",
        client_headers: Mapping[str, str] | None = None,
        alt: str | None = None,
    ) -> UpstreamCall:
        """The upstream request for `body` (already in this provider's format).

        Args:
            cred: the credential to call with.
            model: upstream model name (alias resolved, prefix stripped).
            body: the translated request; it is not modified.
            stream: whether the upstream is asked to stream.
            action: "generate", "count_tokens" or "models".
            client_headers: the client's request headers (never its credentials); only
                named ones are copied (e.g. `anthropic-beta`).
            alt: Gemini's `alt` query value, when the client gave one.

        Raises:
            UnsupportedAction: the provider has no upstream call for `action`.
            UpstreamConfigError: the credential is unusable.
        """
        raise NotImplementedError

    async def send(
        self, http: HTTPRequester, call: UpstreamCall, proxy_url: str | None, timeout: float | None
    ) -> IResponse:
        """Send `call` through `http` (an `UpstreamHTTP`); returns the unbuffered `IResponse`.

        `proxy_url` is the effective proxy (`""`/`None`: environment); `timeout` bounds
        the wait for response headers.
        """
        return await http.request(
            call.method,
            call.url,
            headers=call.headers,
            body=call.body,
            proxy_url=proxy_url,
            timeout_headers=timeout,
        )

    def finish(
        self,
        call: UpstreamCall,
        cred: Credential,
        client_headers: Mapping[str, str],
        defaults: tuple[tuple[str, str], ...] = (),
    ) -> UpstreamCall:
        """`call` with what `build` leaves to the router: the config's
        `<provider>-header-defaults` (core.md §2.5/§2.6) and the credential's `$NAME` header
        values, which copy the client's header NAME (and send nothing without one).

        `defaults` are (YAML key, value) pairs; each key in `header_defaults` replaces the
        executor's built-in value of its header, unless the client's own value is kept
        (`keeps_client_header`) or the credential's `headers:` set it.
        """
        table = self.header_defaults if call.action != "models" else {}
        refs = [(name, value[1:]) for name, value in cred.headers if value.startswith("$")]
        if not (defaults and table) and not refs:
            return call
        own = {name.lower() for name, _ in cred.headers}
        headers = HeaderMap(call.headers)
        for key, value in defaults:
            name = table.get(key, "")
            if not name or name.lower() in own:
                continue
            if self.keeps_client_header(client_headers, name) and lookup(client_headers, name):
                continue
            headers[name] = value
        for name, source in refs:
            copied = lookup(client_headers, source) if source else None
            if copied and source.lower() not in CLIENT_CREDENTIAL_HEADERS:
                headers[name] = copied
            else:
                headers.pop(name)
        return replace(call, headers=headers.to_dict())

    #: `<provider>-header-defaults` YAML key -> the header it sets (empty: none apply)
    header_defaults: Mapping[str, str] = {}

    def keeps_client_header(self, client_headers: Mapping[str, str], name: str) -> bool:
        """Whether the client's own value of header `name` wins over a configured default."""
        return True

    # -- helpers for subclasses ----------------------------------------------------------

    @staticmethod
    def _check_action(action: str, supported: tuple[str, ...], provider: str) -> None:
        if action not in supported:
            raise UnsupportedAction(f"provider {provider} has no upstream {action!r} call")

    @staticmethod
    def _accept(headers: HeaderMap, stream: bool) -> None:
        """Streams must arrive uncompressed and unbuffered; other answers may be compressed."""
        if stream:
            headers["Accept"] = "text/event-stream"
            headers["Accept-Encoding"] = "identity"
        else:
            headers["Accept"] = "application/json"
            headers["Accept-Encoding"] = accept_encoding()

    @staticmethod
    def _custom(headers: HeaderMap, cred: Credential) -> dict[str, str]:
        """Apply the credential's own `headers:` last (they override) and finish."""
        for name, value in cred.headers:
            headers[name] = value
        return headers.to_dict()
