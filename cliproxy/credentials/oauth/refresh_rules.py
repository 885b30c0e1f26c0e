# -*- test-case-name: tests.credentials.test_xai -*-
"""Where each provider's token refresh goes and which headers it carries.

Kimi refreshes carry the same `X-Msh-*` device headers as its logins and API calls (its
service reads them on every call, CLIProxyAPI's `commonHeaders`). xAI files name their
token endpoint (`token_endpoint`, found by OIDC discovery at login); only an https
address on x.ai is used from a file, else `oauth-endpoints.xai.token-url`, else xAI's.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from cliproxy.config.model import OAuthEndpoints
from cliproxy.credentials.oauth.kimi_login import device_headers
from cliproxy.credentials.oauth.providers import ProviderSpec

__all__ = ["XAI_TOKEN_URL", "kimi_device_id", "refresh_headers", "refresh_url", "xai_endpoint_ok"]

XAI_TOKEN_URL = "https://auth.x.ai/oauth2/token"


def kimi_device_id(record: dict[str, Any], name: str) -> str:
    """The file's `device_id` (its login registered it), else one derived from its name."""
    return str(record.get("device_id") or "") or str(
        uuid.uuid5(uuid.NAMESPACE_URL, "cliproxy-kimi-device:" + name)
    )


def xai_endpoint_ok(url: str) -> bool:
    """An https address on x.ai (as CLIProxyAPI validates discovered endpoints)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "x.ai" or host.endswith(".x.ai"))


def refresh_url(spec: ProviderSpec, endpoints: OAuthEndpoints, record: dict[str, Any]) -> str:
    """The token endpoint a refresh of `record` goes to."""
    if spec.file_type == "xai":
        if endpoints.xai.token_url:
            return endpoints.xai.token_url
        own = str(record.get("token_endpoint") or "").strip()
        return own if own and xai_endpoint_ok(own) else XAI_TOKEN_URL
    ep = spec.endpoints(endpoints)
    return str(getattr(ep, "token_url", ""))


def refresh_headers(spec: ProviderSpec, record: dict[str, Any], name: str) -> dict[str, str]:
    """Extra headers of a refresh request."""
    if spec.file_type == "kimi":
        return device_headers(kimi_device_id(record, name))
    return {}
