# -*- test-case-name: tests.config.test_config_exposure -*-
"""Refuse to serve other machines without real client keys.

With `api-keys` empty every request is allowed (as upstream does), which is only safe when
nobody else can connect. CLIProxyAPI's example keys (`your-api-key-1`, ...) are public, so
they count as no keys at all.
"""

from __future__ import annotations

import ipaddress

from .errors import ConfigError
from .model import Config

PLACEHOLDER_PREFIX = "your-api-key"
_ALL_INTERFACES = ("", "0.0.0.0", "::", "[::]")


def split_endpoint(description: str) -> tuple[list[str], dict[str, str]]:
    """Positional and keyword arguments of a Twisted endpoint string, as Twisted reads them.

    `:` separates arguments, `=` names one (only the first `=` counts), `\\` escapes.
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    parts: list[str] = []
    current: list[str] = []
    ops = ":="

    def add() -> None:
        if len(parts) == 1:
            args.append(parts[0])
        else:
            kwargs[parts[0]] = parts[1]

    chars = iter(description)
    for ch in chars:
        if ch in ops:
            parts.append("".join(current))
            current = []
            if ch == ":":
                add()
                parts = []
                ops = ":="
            else:
                ops = ":"
        elif ch == "\\":
            current.append(next(chars, ""))
        else:
            current.append(ch)
    parts.append("".join(current))
    add()
    return args, kwargs


def endpoint_interface(description: str) -> str | None:
    """The address a tcp/ssl/tcp6 endpoint binds ("" = all interfaces); None for other kinds."""
    args, kwargs = split_endpoint(description)
    kind = args[0].strip().lower() if args else ""
    # Index of `interface` among positional arguments, after the kind itself.
    positions = {"tcp": 2, "ssl": 5, "tcp6": 3}
    if kind not in positions:
        return None
    default = "::" if kind == "tcp6" else ""
    if "interface" in kwargs:
        return kwargs["interface"]
    index = positions[kind]
    return args[index] if len(args) > index else default


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x); False for anything else."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _reach(endpoint: str) -> str | None:
    """Who can reach `endpoint`, for the error; None when only this machine can."""
    args, _ = split_endpoint(endpoint)
    kind = args[0].strip().lower() if args else ""
    if kind == "unix":
        return None
    interface = endpoint_interface(endpoint)
    if interface is None:
        return f"a {kind or 'blank'}: endpoint whose address cannot be checked"
    if interface.strip() in _ALL_INTERFACES:
        return "all interfaces"
    if is_loopback_host(interface):
        return None
    return f"{interface}, which other machines can reach"


def check_exposure(config: Config, endpoint: str) -> None:
    """Raise ConfigError if `endpoint` is reachable from other machines without real api-keys."""
    reach = _reach(endpoint)
    if reach is None:
        return
    placeholders = [k for k in config.api_keys if k.lower().startswith(PLACEHOLDER_PREFIX)]
    if not config.api_keys:
        problem = "api-keys is empty, so anyone who connects could use your accounts"
    elif placeholders:
        problem = f"api-keys still holds the example key {placeholders[0]!r}"
    else:
        return
    raise ConfigError(
        f"listening on {endpoint!r} ({reach}) but {problem}; "
        "set your own api-keys or listen on 127.0.0.1",
        path="api-keys",
        source=config.source_path,
    )


def exposure_notes(config: Config, endpoint: str) -> list[str]:
    """What the start-up log says once about client keys on a listener `check_exposure`
    accepted: open mode on loopback, or CLIProxyAPI's public example keys."""
    if _reach(endpoint) is not None:
        return []
    if not config.api_keys:
        return [
            "api-keys is empty: any program on this machine may use your accounts without a "
            "key (web pages are refused by the Origin and Host checks); set api-keys to require one"
        ]
    placeholders = [k for k in config.api_keys if k.lower().startswith(PLACEHOLDER_PREFIX)]
    if placeholders:
        return [
            f"api-keys holds CLIProxyAPI's public example key {placeholders[0]!r}: anyone who "
            "knows the example can use your accounts; replace it with a key of your own"
        ]
    return []
