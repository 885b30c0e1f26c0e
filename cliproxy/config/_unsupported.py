# -*- test-case-name: tests.config.test_config_unsupported -*-
"""CLIProxyAPI keys that load but do nothing here: each is reported, never silently inert.

Two kinds: keys read only for their shape (`Section.keep`, collected in `Context.kept`),
and keys parsed into the model that nothing acts on yet (`INERT`). Each one set to something
other than "off" (`false`, 0, empty: what cliproxy does anyway) gets one warning,
`accepted but not supported: <key path>`, which the daemon logs at start and
`cliproxy check-config` prints. Whoever makes one of them work removes it from here (a test
checks that `INERT` keys have no reader outside the config package).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._fields import Context

#: top-level (dotted) keys parsed into `Config` but not acted on: key path -> model attribute
INERT: dict[str, str] = {
    "commercial-mode": "commercial_mode",
    "ws-auth": "ws_auth",
}

#: kept keys that something does read: per entry from `Credential.options`, top-level ones
#: from `Config.raw`
ACTED_ON = frozenset(
    {
        "cloak",
        "request-retry",
        "auth-auto-refresh-workers",
        "redis-usage-queue-retention-seconds",
        "error-logs-max-files",
        "logs-max-total-size-mb",
    }
)


def report_unsupported(ctx: Context, raw: Mapping[str, object]) -> None:
    """Warn once per present key path that is accepted but not supported."""
    seen: set[str] = set()
    for path, line, value in ctx.kept:
        if path.rsplit(".", 1)[-1] in ACTED_ON or path in seen or not _asks(value):
            continue
        seen.add(path)
        ctx.warn("", line, f"accepted but not supported: {path}")
    for dotted in INERT:
        if _present(raw, dotted) and dotted not in seen:
            seen.add(dotted)
            ctx.warn("", None, f"accepted but not supported: {dotted}")


def _present(raw: Mapping[str, object], dotted: str) -> bool:
    node: object = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return False
        node = node[part]
    return _asks(node)


def _asks(value: object) -> bool:
    """Whether a value asks for something: `false`, 0, "" and empty maps or lists are what
    cliproxy does anyway (e.g. `request-log: false`), so they are not reported."""
    if isinstance(value, Mapping):
        return any(_asks(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return bool(value)
    return value not in (None, False, 0, "")
