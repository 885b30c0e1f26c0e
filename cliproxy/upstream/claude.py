# -*- test-case-name: tests.upstream.test_executors -*-
"""Claude API keys (`claude-api-key`): Anthropic Messages over `/v1/messages` (core §2.6, §2.7)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.formats.requests.claude_rules import messages_body_rules
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.claude_cloak import cloak_body, cloak_settings, wants_cloak
from cliproxy.upstream.headers import HeaderMap, lookup

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
#: always asked for, as the reference does: thinking between tool calls
INTERLEAVED_THINKING = "interleaved-thinking-2025-05-14"
#: the beta an OAuth token (subscription account, or an `sk-ant-oat` key) needs
OAUTH_BETA = "oauth-2025-04-20"
#: how a Claude Code OAuth token pasted into a claude-api-key entry starts
OAUTH_TOKEN_PREFIX = "sk-ant-oat"

#: body fields a count_tokens call rejects ("Extra inputs are not permitted")
_GENERATION_ONLY = (
    "stream",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "service_tier",
)


def _stainless_os() -> str:
    return {"Darwin": "MacOS", "Windows": "Windows"}.get(platform.system(), "Linux")


def _stainless_arch() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("arm64", "aarch64") else "x64"


#: Claude Code's client fingerprint; a client's own value wins when it sends one
CLIENT_DEFAULTS = (
    ("Anthropic-Version", ANTHROPIC_VERSION),
    ("X-App", "cli"),
    ("X-Stainless-Retry-Count", "0"),
    ("X-Stainless-Runtime", "node"),
    ("X-Stainless-Lang", "js"),
    ("X-Stainless-Timeout", "600"),
    ("X-Stainless-Runtime-Version", "v24.3.0"),
    ("X-Stainless-Package-Version", "0.74.0"),
    ("X-Stainless-Os", _stainless_os()),
    ("X-Stainless-Arch", _stainless_arch()),
    ("User-Agent", "claude-cli/2.1.63 (external, cli)"),
)


#: `claude-header-defaults` keys and the header each replaces the built-in value of
HEADER_DEFAULTS = {
    "user-agent": "User-Agent",
    "package-version": "X-Stainless-Package-Version",
    "runtime-version": "X-Stainless-Runtime-Version",
    "os": "X-Stainless-Os",
    "arch": "X-Stainless-Arch",
    "timeout": "X-Stainless-Timeout",
}


def merge_betas(*sources: Any) -> str:
    """Comma-joined beta names from header values and body `betas` (str or list), deduplicated."""
    seen: dict[str, None] = {}
    for source in sources:
        if not source:
            continue
        items = source if isinstance(source, list | tuple) else str(source).split(",")
        for item in items:
            name = str(item).strip()
            if name:
                seen.setdefault(name, None)
    return ",".join(seen)


def uses_x_api_key(base: str) -> bool:
    """Anthropic itself takes `x-api-key`; any other base gets `Authorization: Bearer`."""
    parts = urlsplit(base)
    return parts.scheme == "https" and (parts.hostname or "") == "api.anthropic.com"


class ClaudeExecutor(Executor):
    """POST {base}/v1/messages?beta=true (count: /v1/messages/count_tokens?beta=true)."""

    provider = "claude"
    format = Format.CLAUDE
    kinds = ("claude-api-key",)
    header_defaults = HEADER_DEFAULTS

    def build(
        self,
        cred: Credential,
        *,
        model: str,
        body: dict[str, Any],
        stream: bool,
        action: str = "generate",
        client_headers: Mapping[str, str] | None = None,
        alt: str | None = None,
    ) -> UpstreamCall:
        self._check_action(action, ("generate", "count_tokens", "models"), self.provider)
        client_headers = client_headers or {}
        base = base_url(cred, DEFAULT_BASE_URL)
        h = HeaderMap()
        if action == "models":
            h["Content-Type"] = "application/json"
            self._auth(h, cred, base)
            h["Anthropic-Version"] = (
                lookup(client_headers, "anthropic-version") or ANTHROPIC_VERSION
            )
            self._accept(h, False)
            return UpstreamCall(
                "GET", f"{base}/v1/models", self._custom(h, cred), b"", False, self.provider, action
            )

        payload = dict(body)
        body_betas = payload.pop("betas", None)
        payload["model"] = model
        payload = self._cloak(cred, model, payload, client_headers)
        if action == "count_tokens":
            stream = False
            for name in _GENERATION_ONLY:
                payload.pop(name, None)
            url = f"{base}/v1/messages/count_tokens?beta=true"
        else:
            payload = messages_body_rules(payload)
            if stream:
                payload["stream"] = True
            else:
                payload.pop("stream", None)
            url = f"{base}/v1/messages?beta=true"

        h["Content-Type"] = "application/json"
        self._auth(h, cred, base)
        self._identity(h, client_headers)
        h["Anthropic-Beta"] = merge_betas(
            lookup(client_headers, "anthropic-beta"),
            body_betas,
            INTERLEAVED_THINKING,
            OAUTH_BETA if cred.api_key.startswith(OAUTH_TOKEN_PREFIX) else None,
        )
        h["Anthropic-Dangerous-Direct-Browser-Access"] = "true"
        self._accept(h, stream)
        return UpstreamCall(
            "POST", url, self._custom(h, cred), json_bytes(payload), stream, self.provider, action
        )

    def _cloak(
        self,
        cred: Credential,
        model: str,
        payload: dict[str, Any],
        client_headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """An entry's `cloak` block (mode auto|always|never, strict-mode); none: no cloak."""
        # an sk-ant-oat key is a subscription token: Anthropic takes it only from Claude Code
        default = "auto" if cred.api_key.startswith(OAUTH_TOKEN_PREFIX) else "never"
        mode, strict = cloak_settings(cred, default)
        if wants_cloak(mode, model, client_headers):
            return cloak_body(payload, strict=strict)
        return payload

    def _identity(self, h: HeaderMap, client_headers: Mapping[str, str]) -> None:
        """Claude Code's client fingerprint; an API key keeps the client's own values."""
        # `lookup` per header scanned every client header each time; one folded copy
        # (first spelling wins, as in `lookup`) answers all eleven
        folded: dict[str, str] = {}
        for key, text in client_headers.items():
            folded.setdefault(key.lower(), text)
        for name, default in CLIENT_DEFAULTS:
            value: str | None = None
            if self.keeps_client_header(client_headers, name):
                value = client_headers[name] if name in client_headers else folded.get(name.lower())
            h[name] = value or default

    @staticmethod
    def _auth(h: HeaderMap, cred: Credential, base: str) -> None:
        if not cred.api_key:
            return  # a key-less entry authenticates through its own `headers:`
        if uses_x_api_key(base) and not cred.api_key.startswith(OAUTH_TOKEN_PREFIX):
            h["x-api-key"] = cred.api_key
        else:
            h["Authorization"] = f"Bearer {cred.api_key}"
