"""Configuration: config.yaml to frozen, validated objects, and the live snapshot store.

Public API:
    load_config(path) -> Config, parse_config(text, source="<config>") -> Config,
    ConfigError, Config (and its parts), check_exposure(config, endpoint).
The watcher (ConfigStore, ConfigWatcher) lives in `cliproxy.config.watcher`.
"""

from __future__ import annotations

from ._parse import build_config, decode, read_file
from .errors import ConfigError
from .exposure import check_exposure
from .model import (
    AmpConfig,
    AmpUpstreamKey,
    Config,
    Limits,
    ModelEntry,
    ModelMapping,
    OAuthModelAlias,
    OpenAICompatEntry,
    OpenAICompatKey,
    ProviderKeyEntry,
    RemoteManagement,
    Routing,
    Streaming,
    TLSConfig,
    UpstreamTimeouts,
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


__all__ = [
    "AmpConfig",
    "AmpUpstreamKey",
    "Config",
    "ConfigError",
    "Limits",
    "ModelEntry",
    "ModelMapping",
    "OAuthModelAlias",
    "OpenAICompatEntry",
    "OpenAICompatKey",
    "ProviderKeyEntry",
    "RemoteManagement",
    "Routing",
    "Streaming",
    "TLSConfig",
    "UpstreamTimeouts",
    "check_exposure",
    "load_config",
    "parse_bytes",
    "parse_config",
]
