# -*- test-case-name: tests.config.test_config_load -*-
"""config.yaml bytes to a validated `Config`, all checks done up front."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TypeVar

from ._amp import read_amp
from ._browser import check_cors_keys, read_allowed_hosts, read_cors
from ._fields import Context, Section, kind_of
from ._oauth import read_oauth_endpoints
from ._payload import read_payload
from ._providers import (
    read_key_list,
    read_legacy_gemini,
    read_oauth_excluded,
    read_oauth_model_alias,
    read_openai_compat,
)
from ._store import read_store
from ._unsupported import report_unsupported
from ._yaml import YamlMap, load_tree, plain
from .errors import ConfigError
from .model import (
    DEFAULT_AUTH_DIR,
    DEFAULT_PORT,
    Config,
    Limits,
    ModelCatalogConfig,
    RemoteManagement,
    Routing,
    Streaming,
    TLSConfig,
    UpstreamTimeouts,
)

T = TypeVar("T")

#: `workers` above this is surely a typo (each worker is a whole process)
MAX_WORKERS = 64

ROUTING_STRATEGIES = {
    "round-robin": "round-robin",
    "roundrobin": "round-robin",
    "rr": "round-robin",
    "fill-first": "fill-first",
    "fillfirst": "fill-first",
    "ff": "fill-first",
}

#: CLIProxyAPI keys we accept and keep in `Config.raw` without acting on them (name -> shape).
KEPT_KEYS: dict[str, tuple[type, ...]] = {
    "pprof": (dict,),
    "plugins": (dict,),
    "logs-max-total-size-mb": (int,),
    "error-logs-max-files": (int,),
    "redis-usage-queue-retention-seconds": (int,),
    "disable-image-generation": (bool, str),
    "gpt-image-2-base-model": (str,),
    "auth-auto-refresh-workers": (int,),
    "quota-exceeded": (dict,),
    "codex": (dict,),
    "antigravity-signature-cache-enabled": (bool,),
    "antigravity-signature-bypass-strict": (bool,),
    # Newer CLIProxyAPI releases; accepted so their configs load without noise.
    "save-cooldown-status": (bool,),
    "transient-error-cooldown-seconds": (int,),
    "disable-claude-cloak-mode": (bool,),
    "claude-code": (dict,),
    "video-result-auth-cache-ttl": (str, int),
    "xai": (dict,),
    "antigravity": (dict,),
    "interactions-api-key": (list,),
    "oauth-request-scoped-errors": (dict,),
    "credential-concurrency": (dict,),
    "credential-in-flight": (dict,),
}


def decode(data: bytes, source: str) -> str:
    """UTF-8 text of a config file (a BOM is allowed)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError("not UTF-8 text", line=line, source=source) from None


def read_file(path: str) -> bytes:
    """The bytes of `path` (`~` expanded), or a ConfigError saying why not."""
    try:
        with open(os.path.expanduser(path), "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError("file not found", source=path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", source=path) from None
    except PermissionError:
        raise ConfigError("cannot be read: permission denied", source=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", source=path) from None
    except ValueError:  # e.g. a NUL byte in the path
        raise ConfigError("not a usable file name", source=repr(path)) from None


def build_config(
    text: str, source: str, source_path: str = "", ctx: Context | None = None
) -> Config:
    """Parse and validate config text.

    Raises:
        ConfigError: the first problem found, naming key path and line.
    """
    root, notes = load_tree(text, source)
    if root is None:
        raise ConfigError("no settings found (expected keys such as `port: 8317`)", source=source)
    if not isinstance(root, YamlMap):
        line = getattr(root, "line", 1)
        raise ConfigError(
            f"the top level must be a mapping of keys, got {kind_of(root)}",
            line=line,
            source=source,
        )
    ctx = ctx or Context(source)
    for note in notes:
        ctx.warn(note.path, note.line, note.message)
    top = Section(ctx, root)
    raw = plain(root)
    assert isinstance(raw, dict)
    config = _read(top, source_path, raw)
    check_cors_keys(top, config)
    for key, kinds in KEPT_KEYS.items():
        top.keep(key, *kinds)
    top.finish()
    report_unsupported(ctx, raw)
    # Warnings are complete only once every section (and the unknown keys) has been seen.
    return dataclasses.replace(config, warnings=tuple(ctx.warnings))


def _listen(top: Section) -> str | None:
    text = top.string("listen")
    if not text:
        return None
    kind = text.split(":", 1)[0]
    if not kind or "=" in kind:
        raise top.error(
            "listen", f'not a Twisted endpoint (try "tcp:8317:interface=127.0.0.1"): {text!r}'
        )
    return text


def _subsection(top: Section, key: str, build: Callable[[Section], T]) -> T:
    """Build one nested section; an absent one reads as empty, so defaults apply."""
    sec = top.section(key) or Section(top.ctx, YamlMap(top.line_of(key)), top.path_of(key))
    out = build(sec)
    sec.finish()
    return out


def _tls(sec: Section) -> TLSConfig:
    tls = TLSConfig(
        enable=sec.boolean("enable", False),
        cert=sec.string("cert", expand_user=True),
        key=sec.string("key", expand_user=True),
    )
    for key in ("cert", "key"):
        if tls.enable and not getattr(tls, key):
            raise sec.error(key, "required when tls.enable is true")
    return tls


def _remote_management(sec: Section) -> RemoteManagement:
    default = RemoteManagement()
    return RemoteManagement(
        allow_remote=sec.boolean("allow-remote", default.allow_remote),
        secret_key=sec.string("secret-key"),
        disable_control_panel=sec.boolean("disable-control-panel", False),
        disable_auto_update_panel=sec.boolean("disable-auto-update-panel", False),
        panel_github_repository=sec.string("panel-github-repository")
        or default.panel_github_repository,
    )


def _routing(sec: Section) -> Routing:
    default = Routing()
    sec.keep("session-affinity-subagents", bool)
    return Routing(
        strategy=sec.choice("strategy", default.strategy, ROUTING_STRATEGIES),
        session_affinity=sec.boolean("session-affinity", default.session_affinity),
        session_affinity_ttl=sec.duration("session-affinity-ttl", default.session_affinity_ttl),
    )


def _model_catalog(sec: Section) -> ModelCatalogConfig:
    default = ModelCatalogConfig()
    interval = sec.duration("refresh-interval", default.refresh_interval)
    if interval < 1:
        raise sec.error("refresh-interval", "must be at least 1s")
    return ModelCatalogConfig(
        enabled=sec.boolean("enabled", default.enabled),
        url=sec.url("url", default.url),
        refresh_interval=interval,
    )


def _streaming(sec: Section) -> Streaming:
    default = Streaming()
    return Streaming(
        keepalive_seconds=sec.seconds("keepalive-seconds", default.keepalive_seconds),
        bootstrap_retries=sec.integer("bootstrap-retries", default.bootstrap_retries),
        idle_timeout_seconds=sec.seconds("idle-timeout-seconds", default.idle_timeout_seconds),
    )


#: `claude-header-defaults` keys that set a header (upstream/claude.py names which)
CLAUDE_HEADER_KEYS = ("user-agent", "package-version", "runtime-version", "os", "arch", "timeout")


def _header_values(sec: Section, keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for key in keys:
        value = sec.string(key)
        if "\r" in value or "\n" in value:
            raise sec.error(key, "a header value must be on one line")
        if value:
            out.append((key, value))
    return tuple(out)


def _claude_headers(sec: Section) -> tuple[tuple[str, str], ...]:
    sec.keep("timezone", str)
    sec.keep("stabilize-device-profile", bool)
    return _header_values(sec, CLAUDE_HEADER_KEYS)


def _codex_headers(sec: Section) -> tuple[tuple[str, str], ...]:
    return _header_values(sec, ("user-agent", "beta-features"))


def _limits(sec: Section) -> Limits:
    default = Limits()
    return Limits(
        max_body_bytes=sec.size("max-body-size", default.max_body_bytes),
        header_timeout_seconds=sec.seconds(
            "header-timeout-seconds", default.header_timeout_seconds
        ),
        body_timeout_seconds=sec.seconds("body-timeout-seconds", default.body_timeout_seconds),
        max_header_bytes=sec.size("max-header-size", default.max_header_bytes),
        max_connections=sec.integer("max-connections", default.max_connections),
        max_connections_per_peer=sec.integer(
            "max-connections-per-peer", default.max_connections_per_peer
        ),
        key_failures_per_minute=sec.integer(
            "key-failures-per-minute", default.key_failures_per_minute
        ),
        key_lockout_seconds=sec.seconds("key-lockout-seconds", default.key_lockout_seconds),
        large_body_bytes=sec.size("large-body-size", default.large_body_bytes),
        large_body_threads=sec.integer(
            "large-body-threads", default.large_body_threads, minimum=1, maximum=64
        ),
        large_body_queue=sec.integer("large-body-queue", default.large_body_queue),
    )


def _upstream_timeouts(sec: Section) -> UpstreamTimeouts:
    default = UpstreamTimeouts()
    return UpstreamTimeouts(
        connect_seconds=sec.seconds("connect-seconds", default.connect_seconds),
        headers_seconds=sec.seconds("headers-seconds", default.headers_seconds),
    )


def _read(top: Section, source_path: str, raw: dict[str, object]) -> Config:
    cooling = top.boolean("disable-cooling", False)
    legacy_gemini = read_legacy_gemini(top)
    return Config(
        source_path=source_path,
        host=top.string("host"),
        port=top.integer("port", DEFAULT_PORT, minimum=1, maximum=65535),
        listen=_listen(top),
        tls=_subsection(top, "tls", _tls),
        remote_management=_subsection(top, "remote-management", _remote_management),
        auth_dir=top.string("auth-dir", DEFAULT_AUTH_DIR, expand_user=True)
        or os.path.expanduser(DEFAULT_AUTH_DIR),
        api_keys=top.unique_strings("api-keys"),
        cors=_subsection(top, "cors", read_cors),
        allowed_hosts=read_allowed_hosts(top),
        debug=top.boolean("debug", False),
        logging_to_file=top.boolean("logging-to-file", False),
        request_log=top.boolean("request-log", False),
        usage_statistics_enabled=top.boolean("usage-statistics-enabled", False),
        commercial_mode=top.boolean("commercial-mode", False),
        ws_auth=top.boolean("ws-auth", False),
        enable_gemini_cli_endpoint=top.boolean("enable-gemini-cli-endpoint", False),
        proxy_url=top.proxy_url("proxy-url"),
        force_model_prefix=top.boolean("force-model-prefix", False),
        passthrough_headers=top.boolean("passthrough-headers", False),
        request_retry=top.integer("request-retry", 0),
        max_retry_credentials=top.integer("max-retry-credentials", 0),
        max_retry_interval=top.seconds("max-retry-interval", 0),
        disable_cooling=cooling,
        nonstream_keepalive_interval=top.seconds("nonstream-keepalive-interval", 0),
        claude_header_defaults=_subsection(top, "claude-header-defaults", _claude_headers),
        codex_header_defaults=_subsection(top, "codex-header-defaults", _codex_headers),
        payload=_subsection(top, "payload", read_payload),
        routing=_subsection(top, "routing", _routing),
        model_catalog=_subsection(top, "model-catalog", _model_catalog),
        streaming=_subsection(top, "streaming", _streaming),
        limits=_subsection(top, "limits", _limits),
        shutdown_grace_seconds=top.seconds("shutdown-grace-seconds", 30),
        workers=top.integer("workers", 1, minimum=1, maximum=MAX_WORKERS),
        upstream_timeouts=_subsection(top, "upstream-timeouts", _upstream_timeouts),
        store=_subsection(top, "store", read_store),
        gemini_api_key=read_key_list(top, "gemini-api-key", cooling, legacy_gemini),
        claude_api_key=read_key_list(top, "claude-api-key", cooling),
        codex_api_key=read_key_list(top, "codex-api-key", cooling),
        vertex_api_key=read_key_list(top, "vertex-api-key", cooling),
        xai_api_key=read_key_list(top, "xai-api-key", cooling),
        openai_compatibility=read_openai_compat(top, cooling),
        ampcode=read_amp(top),
        oauth_model_alias=read_oauth_model_alias(top),
        oauth_excluded_models=read_oauth_excluded(top),
        oauth_endpoints=read_oauth_endpoints(top),
        raw=raw,
    )


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate config text; errors and warnings are labelled with `source`.

    Raises:
        ConfigError: naming the key path and line of the first problem.
    """
    return build_config(text, source)


def load_config(path: str) -> Config:
    """Read and validate the config file at `path` (`~` expanded).

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or has a bad value.
    """
    return parse_bytes(read_file(path), path)


def parse_bytes(data: bytes, path: str) -> Config:
    """Validate the bytes of the config file at `path` (used by the watcher)."""
    return build_config(decode(data, path), path, source_path=path)
