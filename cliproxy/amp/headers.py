# -*- test-case-name: tests.amp.test_management -*-
"""The header policy for requests cliproxy forwards to the Amp upstream.

The client's own credentials (its cliproxy key) never travel upstream: the credential
headers are replaced by the upstream key, and `key=`/`auth_token=` query values equal to
the authenticated client key or to any configured client key are removed, on every
proxied route (also those that need no key, and in open mode) and the WebSocket gateway.
Proxy-tracing and client-fingerprint headers are dropped. `Anthropic-Beta` is left alone on
this path.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_plus, unquote_to_bytes

from twisted.web.http_headers import Headers

from cliproxy.web.proxy import end_to_end

CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})
SCRUBBED = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
        b"forwarded",
        b"via",
        b"x-title",
        b"referer",
        b"http-referer",
        b"priority",
        b"accept-encoding",
        b"host",
        b"content-length",
        b"expect",
    }
)
SCRUBBED_PREFIXES = (b"x-stainless-", b"sec-ch-ua", b"sec-fetch-")
#: query parameters a client may carry its key in
QUERY_KEYS = (b"key", b"auth_token")


def scrubbed(name: bytes) -> bool:
    lower = name.lower()
    return lower in SCRUBBED or lower in CREDENTIAL_HEADERS or lower.startswith(SCRUBBED_PREFIXES)


def upstream_headers(
    client: Headers, secret: str, *, keep: frozenset[bytes] = frozenset()
) -> dict[str, list[str]]:
    """Headers for the upstream request: end-to-end client headers minus the scrubbed
    ones (`keep` names survive the hop-by-hop cut, e.g. `Upgrade` for WebSockets), plus
    `X-Api-Key` and `Authorization: Bearer` with `secret` when it is not empty."""
    out: dict[str, list[str]] = {}
    for name, values in client.getAllRawHeaders():
        lower = name.lower()
        if lower in keep:
            out[lower.decode("latin-1")] = [v.decode("latin-1") for v in values]
    for name, values in end_to_end(client):
        if scrubbed(name):
            continue
        out[name.decode("latin-1")] = [v.decode("latin-1") for v in values]
    if secret:
        out["X-Api-Key"] = [secret]
        out["Authorization"] = [f"Bearer {secret}"]
    return out


def strip_client_key(query: bytes, client_key: str | None, api_keys: Iterable[str] = ()) -> bytes:
    """The query string without `key=`/`auth_token=` values equal to `client_key` or to
    one of `api_keys` (the configured client keys).

    Everything else keeps its order and exact encoding.
    """
    secrets = {k for k in (client_key, *api_keys) if k}
    if not query or not secrets:
        return query
    kept = []
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) in QUERY_KEYS:
            if unquote_plus(value.decode("utf-8", "replace")) in secrets:
                continue
        kept.append(pair)
    return b"&".join(kept)
