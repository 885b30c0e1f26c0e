# -*- test-case-name: tests.upstream.test_headers -*-
"""Header helpers: a case-insensitive header map for building requests, and the filter
that decides which upstream response headers may be passed through to a client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

#: RFC 9110 §7.6.1 hop-by-hop headers (plus the old `proxy-connection`): never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

#: Response headers that describe the upstream's bytes, not ours (we re-frame and decode),
#: or that would plant upstream state in the client.
_NOT_PASSED_THROUGH = frozenset({"content-length", "content-encoding", "set-cookie", "set-cookie2"})

#: Headers that AI gateways in front of a provider add about themselves (spec core §1.7).
_GATEWAY_PREFIXES = ("x-litellm-", "helicone-", "x-portkey-", "cf-aig-", "x-kong-", "x-bt-")

#: Request headers that carry a client's own credential: never copied upstream.
CLIENT_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie"}
)


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class HeaderMap:
    """An ordered, case-insensitive str→str map that keeps the spelling last set.

    Executors build upstream headers with it so that per-credential headers applied
    last replace a built-in header whatever its case (`X-Api-Key` vs `x-api-key`).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def get(self, name: str, default: str | None = None) -> str | None:
        item = self._items.get(name.lower())
        return item[1] if item is not None else default

    def pop(self, name: str, default: str | None = None) -> str | None:
        item = self._items.pop(name.lower(), None)
        return item[1] if item is not None else default

    def setdefault(self, name: str, value: str) -> str:
        if name not in self:
            self[name] = value
        return self[name]

    def update(self, items: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def to_dict(self) -> dict[str, str]:
        """Plain dict in insertion order, with each header's last-set spelling."""
        return dict(self._items.values())

    def __repr__(self) -> str:
        return f"HeaderMap({list(self._items.values())!r})"


def lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive read from a plain client-header dict."""
    if name in headers:
        return headers[name]
    wanted = name.lower()
    for k, v in headers.items():
        if k.lower() == wanted:
            return v
    return None


def connection_tokens(values: Iterable[bytes | str]) -> set[str]:
    """Header names listed in `Connection:` values, which are hop-by-hop too."""
    out: set[str] = set()
    for value in values:
        for token in _text(value).split(","):
            token = token.strip().lower()
            if token:
                out.add(token)
    return out


def passthrough_allowed(
    name: str, extra_hop_by_hop: frozenset[str] | set[str] = frozenset()
) -> bool:
    """Whether an upstream response header may be copied to the client."""
    lname = name.lower()
    if lname in HOP_BY_HOP or lname in _NOT_PASSED_THROUGH or lname in extra_hop_by_hop:
        return False
    return not lname.startswith(_GATEWAY_PREFIXES)


def filter_response_headers(
    raw: Iterable[tuple[bytes | str, list[bytes] | list[str]]],
) -> list[tuple[bytes, list[bytes]]]:
    """The upstream response headers a client may see (`passthrough-headers: true`).

    `raw` is what `IResponse.headers.getAllRawHeaders()` yields. Hop-by-hop headers,
    names listed in `Connection:`, `Set-Cookie`, `Content-Length`, `Content-Encoding`
    and AI-gateway headers are dropped.
    """
    pairs = [(_text(name), values) for name, values in raw]
    listed: set[str] = set()
    for name, values in pairs:
        if name.lower() == "connection":
            listed |= connection_tokens(values)
    out: list[tuple[bytes, list[bytes]]] = []
    for name, values in pairs:
        if passthrough_allowed(name, listed):
            out.append(
                (
                    name.encode("latin-1"),
                    [v if isinstance(v, bytes) else v.encode("latin-1") for v in values],
                )
            )
    return out
