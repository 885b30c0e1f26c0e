# -*- test-case-name: tests.management.test_config_endpoints -*-
"""Whole-config and single-setting endpoints (core.md §6.2, §6.3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web.server import Request

from cliproxy import __version__
from cliproxy.config import Config, ConfigError
from cliproxy.config._parse import ROUTING_STRATEGIES
from cliproxy.config.watcher import ConfigStore
from cliproxy.management.edits import delete_path, get_path, plain, save, set_path, value_of
from cliproxy.management.resource import BadRequest, Endpoint, answer, read_json
from cliproxy.management.secrets import masked_ampcode
from cliproxy.management.writer import ConfigWriter, InvalidYAML

#: fields GET /config leaves out, as CLIProxyAPI does
HIDDEN = ("host", "port", "auth-dir", "remote-management")


@dataclass(frozen=True)
class Scalar:
    """One `{"value": v}` setting: where it lives in the YAML, its type and live value."""

    path: tuple[str, ...]
    kind: type
    read: Callable[[Config], Any]


def _raw(path: tuple[str, ...], default: Any) -> Callable[[Config], Any]:
    return lambda c: get_path(c.raw, path, default)


SCALARS: dict[str, Scalar] = {
    "debug": Scalar(("debug",), bool, lambda c: c.debug),
    "logging-to-file": Scalar(("logging-to-file",), bool, lambda c: c.logging_to_file),
    "logs-max-total-size-mb": Scalar(
        ("logs-max-total-size-mb",), int, _raw(("logs-max-total-size-mb",), 0)
    ),
    "error-logs-max-files": Scalar(
        ("error-logs-max-files",), int, _raw(("error-logs-max-files",), 10)
    ),
    "usage-statistics-enabled": Scalar(
        ("usage-statistics-enabled",), bool, lambda c: c.usage_statistics_enabled
    ),
    "request-log": Scalar(("request-log",), bool, lambda c: c.request_log),
    "ws-auth": Scalar(("ws-auth",), bool, lambda c: c.ws_auth),
    "request-retry": Scalar(("request-retry",), int, lambda c: c.request_retry),
    "max-retry-interval": Scalar(("max-retry-interval",), int, lambda c: int(c.max_retry_interval)),
    "force-model-prefix": Scalar(("force-model-prefix",), bool, lambda c: c.force_model_prefix),
    "quota-exceeded/switch-project": Scalar(
        ("quota-exceeded", "switch-project"), bool, _raw(("quota-exceeded", "switch-project"), True)
    ),
    "quota-exceeded/switch-preview-model": Scalar(
        ("quota-exceeded", "switch-preview-model"),
        bool,
        _raw(("quota-exceeded", "switch-preview-model"), True),
    ),
    "proxy-url": Scalar(("proxy-url",), str, lambda c: c.proxy_url),
}


def typed(value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise BadRequest("invalid body")
    return value


class ScalarEndpoint(Endpoint):
    """GET `{"<name>": v}`; PUT/PATCH `{"value": v}`; DELETE (proxy-url) clears it."""

    def __init__(self, name: str, scalar: Scalar, store: ConfigStore, writer: ConfigWriter):
        super().__init__()
        self.name = name.rsplit("/", 1)[-1]
        self.scalar = scalar
        self.store = store
        self.writer = writer

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {self.name: self.scalar.read(self.store.current)})

    def render_PUT(self, request: Request) -> bytes:
        value = typed(value_of(read_json(request)), self.scalar.kind)
        return save(request, self.writer, lambda doc: set_path(doc, self.scalar.path, value))

    render_PATCH = render_PUT


class ProxyURL(ScalarEndpoint):
    def render_DELETE(self, request: Request) -> bytes:
        return save(request, self.writer, lambda doc: delete_path(doc, ("proxy-url",)))


class RoutingStrategy(Endpoint):
    def __init__(self, store: ConfigStore, writer: ConfigWriter) -> None:
        super().__init__()
        self.store = store
        self.writer = writer

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {"strategy": self.store.current.routing.strategy})

    def render_PUT(self, request: Request) -> bytes:
        value = value_of(read_json(request))
        strategy = (
            ROUTING_STRATEGIES.get(str(value).strip().lower()) if isinstance(value, str) else None
        )
        if strategy is None:
            raise BadRequest("invalid strategy")
        return save(
            request, self.writer, lambda doc: set_path(doc, ("routing", "strategy"), strategy)
        )

    render_PATCH = render_PUT


def config_json(config: Config) -> dict[str, Any]:
    """The config as CLIProxyAPI's GET /config shows it: file values over defaults."""
    out: dict[str, Any] = {name.split("/")[0]: None for name in SCALARS}
    for name, scalar in SCALARS.items():
        if "/" not in name:
            out[name] = scalar.read(config)
    out["quota-exceeded"] = {
        "switch-project": SCALARS["quota-exceeded/switch-project"].read(config),
        "switch-preview-model": SCALARS["quota-exceeded/switch-preview-model"].read(config),
    }
    out["routing"] = {"strategy": config.routing.strategy}
    out["api-keys"] = list(config.api_keys)
    for key, value in plain(config.raw).items():
        if key not in HIDDEN and key not in ("api-keys", "routing", "quota-exceeded"):
            out.setdefault(key, value)
    out["ampcode"] = masked_ampcode(config)
    for key in ("amp-upstream-api-key",):
        out.pop(key, None)
    return out


class ConfigJSON(Endpoint):
    def __init__(self, store: ConfigStore) -> None:
        super().__init__()
        self.store = store

    def render_GET(self, request: Request) -> bytes:
        return answer(request, config_json(self.store.current))


class ConfigYAML(Endpoint):
    """The raw file: GET it, PUT a whole new one (validated like a start-up load)."""

    def __init__(self, writer: ConfigWriter) -> None:
        super().__init__()
        self.writer = writer

    def render_GET(self, request: Request) -> bytes:
        body = self.writer.text().encode("utf-8")
        request.setHeader(b"content-type", b"application/yaml; charset=utf-8")
        request.setHeader(b"content-length", b"%d" % len(body))
        return body

    def render_PUT(self, request: Request) -> bytes:
        content = request.content
        raw = content.read() if content is not None else b""
        try:
            text = raw.decode("utf-8-sig")
            self.writer.replace_text(text)
        except (InvalidYAML, UnicodeDecodeError) as e:
            return answer(request, {"error": "invalid_yaml", "message": str(e)}, 400)
        except ConfigError as e:
            return answer(request, {"error": "invalid_config", "message": str(e)}, 422)
        return answer(request, {"ok": True, "changed": ["config"]})


class LatestVersion(Endpoint):
    """The running version: no call to GitHub is made."""

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {"latest-version": __version__})


class NoPlugins(Endpoint):
    """GET `/plugins`: cliproxy has no plugins; CLIProxyAPI's answer with plugins off and
    none found, so the Management Center's pages that ask (OAuth, the menu) load cleanly.
    The other plugin endpoints stay 404."""

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {"plugins_enabled": False, "plugins_dir": "plugins", "plugins": []})


__all__ = [
    "SCALARS",
    "NoPlugins",
    "ConfigJSON",
    "ConfigYAML",
    "LatestVersion",
    "ProxyURL",
    "RoutingStrategy",
    "ScalarEndpoint",
]
