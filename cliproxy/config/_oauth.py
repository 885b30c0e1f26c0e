# -*- test-case-name: tests.config.test_config_oauth -*-
"""`oauth-endpoints:` (ours): point logins, refreshes and subscription APIs elsewhere.

Every URL defaults to the provider's real one; tests and people behind unusual networks
(a corporate gateway, a mirror) override the ones they need.
"""

from __future__ import annotations

from dataclasses import fields

from ._fields import Section
from .model import (
    AntigravityEndpoints,
    ClaudeEndpoints,
    CodexEndpoints,
    GeminiEndpoints,
    KimiEndpoints,
    OAuthEndpoints,
    XAIEndpoints,
)

#: YAML section name -> the dataclass holding its URLs
_PROVIDERS = {
    "claude": ClaudeEndpoints,
    "codex": CodexEndpoints,
    "gemini": GeminiEndpoints,
    "kimi": KimiEndpoints,
    "antigravity": AntigravityEndpoints,
    "xai": XAIEndpoints,
}


def _yaml_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def _provider(parent: Section, name: str, cls: type) -> object:
    sec = parent.section(name)
    default = cls()
    if sec is None:
        return default
    values = {f.name: sec.url(_yaml_name(f.name), getattr(default, f.name)) for f in fields(cls)}
    sec.finish()
    return cls(**values)


def read_oauth_endpoints(top: Section) -> OAuthEndpoints:
    """The `oauth-endpoints` section; absent keys keep the providers' real URLs."""
    sec = top.section("oauth-endpoints")
    if sec is None:
        return OAuthEndpoints()
    out = OAuthEndpoints(
        **{name: _provider(sec, name, cls) for name, cls in _PROVIDERS.items()}  # type: ignore[arg-type]
    )
    sec.finish()
    return out


#: Leaf keys under each provider, for the conf/config.yaml completeness test.
ENDPOINT_KEYS = {
    name: tuple(_yaml_name(f.name) for f in fields(cls)) for name, cls in _PROVIDERS.items()
}
