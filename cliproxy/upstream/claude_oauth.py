# -*- test-case-name: tests.oauth.test_executors -*-
"""Claude subscription accounts (auth file `type: "claude"`): Messages with an OAuth token.

Differences from an API key (core.md §2.6): `Authorization: Bearer <access token>`, the
beta flags Claude's subscription API requires (`oauth-2025-04-20` always), no
`Anthropic-Dangerous-Direct-Browser-Access`, a stable `X-Claude-Code-Session-Id`, and
the system prompt Claude Code sends: the subscription API serves Claude Code, so the
client's own system text moves into the first user turn as a `<system-reminder>`
(unless the client is Claude Code itself).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cliproxy.credentials.model import Credential
from cliproxy.upstream.base import UpstreamCall, base_url
from cliproxy.upstream.claude import (
    INTERLEAVED_THINKING,
    OAUTH_BETA,
    ClaudeExecutor,
    merge_betas,
)
from cliproxy.upstream.claude_cloak import (
    CLAUDE_CODE_SYSTEM,
    cloak_body,
    cloak_settings,
    is_claude_code,
    wants_cloak,
)
from cliproxy.upstream.headers import HeaderMap, lookup
from cliproxy.upstream.oauth_call import OAuthSender, oauth_call, require_holder

__all__ = ["CLAUDE_CODE_SYSTEM", "ClaudeOAuthExecutor", "DEFAULT_OAUTH_BETAS", "cloak_body"]

DEFAULT_OAUTH_BETAS = ",".join(
    (
        "claude-code-20250219",
        OAUTH_BETA,
        INTERLEAVED_THINKING,
        "context-management-2025-06-27",
        "prompt-caching-scope-2026-01-05",
        "structured-outputs-2025-12-15",
        "fast-mode-2026-02-01",
        "redact-thinking-2026-02-12",
        "token-efficient-tools-2026-03-28",
    )
)
_USER_ID = re.compile(r"^user_[0-9a-f]{64}_account_[0-9a-f-]{36}_session_[0-9a-f-]{36}$")


def _user_id(cred: Credential) -> str:
    seed = cred.id.encode("utf-8")
    user = hashlib.sha256(b"cliproxy-claude-user:" + seed).hexdigest()
    account = uuid.uuid5(uuid.NAMESPACE_URL, "cliproxy-claude-account:" + cred.id)
    session = uuid.uuid5(uuid.NAMESPACE_URL, "cliproxy-claude-session:" + cred.id)
    return f"user_{user}_account_{account}_session_{session}"


class ClaudeOAuthExecutor(OAuthSender, ClaudeExecutor):
    """Claude Messages with a subscription token (`type: "claude"` auth files).

    Args:
        cloak: `auto` (Claude Code's system prompt unless the client is Claude Code),
            `always` or `never`.
    """

    kinds = ("oauth:claude",)

    def __init__(self, cloak: str = "auto") -> None:
        self.cloak = cloak

    def _cloak(
        self,
        cred: Credential,
        model: str,
        payload: dict[str, Any],
        client_headers: Mapping[str, str],
    ) -> dict[str, Any]:
        mode, strict = cloak_settings(cred, self.cloak)
        if not wants_cloak(mode, model, client_headers):
            return payload
        payload = cloak_body(payload, strict=strict)
        metadata = payload.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        if not _USER_ID.match(str(metadata.get("user_id") or "")):
            metadata["user_id"] = _user_id(cred)
        payload["metadata"] = metadata
        return payload

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
        holder = require_holder(cred)
        client_headers = client_headers or {}
        payload = dict(body)
        body_betas = payload.pop("betas", None)
        call = super().build(
            cred,
            model=model,
            body=payload,
            stream=stream,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
        h = HeaderMap(call.headers)
        h.pop("Anthropic-Dangerous-Direct-Browser-Access")
        client_betas = lookup(client_headers, "anthropic-beta")
        betas = merge_betas(client_betas or DEFAULT_OAUTH_BETAS, body_betas, INTERLEAVED_THINKING)
        if "oauth" not in betas:
            betas = merge_betas(betas, OAUTH_BETA)
        h["Anthropic-Beta"] = betas
        h["X-Claude-Code-Session-Id"] = str(
            uuid.uuid5(uuid.NAMESPACE_URL, "cliproxy-claude-code-session:" + cred.id)
        )
        if (urlsplit(base_url(cred, None)).hostname or "") == "api.anthropic.com":
            h["x-client-request-id"] = str(uuid.uuid4())
        h["Connection"] = "keep-alive"
        # the account's own headers still win
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))

    def keeps_client_header(self, client_headers: Mapping[str, str], name: str) -> bool:
        """Only Claude Code itself keeps its own identity headers.

        The subscription API serves Claude Code: another client's User-Agent or SDK
        headers next to an OAuth token are refused.
        """
        return is_claude_code(client_headers)

    @staticmethod
    def _auth(h: HeaderMap, cred: Credential, base: str) -> None:
        # the bearer token is added at send time, fresh from the account's TokenHolder
        h.pop("x-api-key")
