# -*- test-case-name: tests.security.test_config_browser -*-
"""`cors.allow-origins` and `allowed-hosts`: which browser origins and Host names are served.

Both are read strictly: an origin is `scheme://host[:port]` with nothing after it, as
browsers send it in `Origin`; a host is a bare name or address, without a port.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ._fields import Section
from .model import Config, Cors

_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9_.-]*[a-z0-9])?)$")


def _origin(sec: Section, path: str, text: str) -> str:
    if text == "*":
        return text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise sec.ctx.error(
            path,
            None,
            f"{text!r} is not an origin; write it as the browser sends it, such as "
            '"https://panel.example.com" or "http://localhost:3000"',
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def read_cors(sec: Section) -> Cors:
    origins: dict[str, None] = {}
    for index, text in enumerate(sec.strings("allow-origins")):
        origins.setdefault(_origin(sec, f"{sec.path_of('allow-origins')}[{index}]", text), None)
    return Cors(allow_origins=tuple(origins))


def read_allowed_hosts(top: Section) -> tuple[str, ...]:
    hosts: dict[str, None] = {}
    for index, text in enumerate(top.strings("allowed-hosts")):
        name = text.strip().lower().rstrip(".")
        if name != "*" and not _HOST.match(name):
            raise top.ctx.error(
                f"allowed-hosts[{index}]",
                top.line_of("allowed-hosts"),
                f"{text!r} is not a host name; write the name alone, without scheme or port",
            )
        hosts.setdefault(name, None)
    return tuple(hosts)


def check_cors_keys(top: Section, config: Config) -> None:
    """`*` lets every web page call the API: only allowed when clients need a key."""
    if "*" in config.cors.allow_origins and not config.api_keys:
        raise top.ctx.error(
            "cors.allow-origins",
            top.line_of("cors"),
            '"*" lets every web page you visit use your accounts; it is only allowed '
            "when api-keys is set. List the origins you use instead",
        )


__all__ = ["check_cors_keys", "read_allowed_hosts", "read_cors"]
