# -*- test-case-name: tests.management.test_ampcode -*-
"""Secrets as the management API shows them: masked, never in clear (amp.md MGT-10)."""

from __future__ import annotations

from typing import Any

from cliproxy.config import AmpConfig, Config


def mask(secret: str) -> str:
    """`***` and at most the last four characters (none for short secrets)."""
    if not secret:
        return ""
    return "***" + secret[-4:] if len(secret) > 8 else "***"


def masked_ampcode(config: Config) -> dict[str, Any]:
    amp: AmpConfig = config.ampcode
    return {
        "upstream-url": amp.upstream_url,
        "upstream-api-key": mask(amp.upstream_api_key),
        "upstream-api-keys": [
            {"upstream-api-key": mask(k.upstream_api_key), "api-keys": list(k.api_keys)}
            for k in amp.upstream_api_keys
        ],
        "restrict-management-to-localhost": amp.restrict_management_to_localhost,
        "model-mappings": [mapping_json(m.from_, m.to, m.regex) for m in amp.model_mappings],
        "force-model-mappings": amp.force_model_mappings,
    }


def mapping_json(source: str, target: str, regex: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"from": source, "to": target}
    if regex:
        out["regex"] = True
    return out
