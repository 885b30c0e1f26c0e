"""Configuration: config.yaml to frozen, validated objects, and the live snapshot store.

Public API:
    load_config(path) -> Config, parse_config(text, source="<config>") -> Config,
    ConfigError, Config (and its parts), check_exposure(config, endpoint).
The watcher (ConfigStore, ConfigWatcher) lives in `cliproxy.config.watcher`.
"""

from __future__ import annotations

from ._parse import load_config, parse_bytes, parse_config
from .errors import ConfigError
from .exposure import check_exposure
from .model import (
    AmpConfig,
    AmpUpstreamKey,
    ClaudeEndpoints,
    CodexEndpoints,
    Config,
    Cors,
    GeminiEndpoints,
    Limits,
    ModelEntry,
    ModelMapping,
    OAuthEndpoints,
    OAuthModelAlias,
    OpenAICompatEntry,
    OpenAICompatKey,
    ProviderKeyEntry,
    RemoteManagement,
    Routing,
    StoreConfig,
    Streaming,
    TLSConfig,
    UpstreamTimeouts,
)

__all__ = [
    "AmpConfig",
    "AmpUpstreamKey",
    "ClaudeEndpoints",
    "CodexEndpoints",
    "Config",
    "ConfigError",
    "GeminiEndpoints",
    "Cors",
    "Limits",
    "ModelEntry",
    "ModelMapping",
    "OAuthEndpoints",
    "OAuthModelAlias",
    "OpenAICompatEntry",
    "OpenAICompatKey",
    "ProviderKeyEntry",
    "RemoteManagement",
    "Routing",
    "StoreConfig",
    "Streaming",
    "TLSConfig",
    "UpstreamTimeouts",
    "check_exposure",
    "load_config",
    "parse_bytes",
    "parse_config",
]
