# -*- test-case-name: tests.oauth.test_executors -*-
"""Codex subscription accounts (auth file `type: "codex"`): the ChatGPT backend (core.md §2.5).

Like a `codex-api-key` entry (always streamed upstream, `store: false`; non-stream
clients get the aggregated answer from the router), plus what a ChatGPT login needs:
the access token as bearer, `Chatgpt-Account-Id` and `Originator`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cliproxy.config.model import CODEX_API_URL
from cliproxy.credentials.model import Credential
from cliproxy.credentials.oauth.records import codex_identity
from cliproxy.upstream.base import UpstreamCall
from cliproxy.upstream.codex import CodexExecutor
from cliproxy.upstream.headers import HeaderMap, lookup
from cliproxy.upstream.oauth_call import OAuthCall, OAuthSender, oauth_call, require_holder

__all__ = ["CodexOAuthExecutor", "DEFAULT_ORIGINATOR"]

DEFAULT_ORIGINATOR = "codex-tui"


class CodexOAuthExecutor(OAuthSender, CodexExecutor):
    """POST {base}/responses with a ChatGPT login's token (base: oauth-endpoints.codex.api-url)."""

    kinds = ("oauth:codex",)
    #: `codex-header-defaults` (subscription accounts only, as CLIProxyAPI): a client's
    #: own value still wins
    header_defaults = {"user-agent": "User-Agent", "beta-features": "X-Codex-Beta-Features"}

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
        if not cred.base_url:
            cred = replace(cred, base_url=CODEX_API_URL)
        call = super().build(
            cred,
            model=model,
            body=body,
            stream=stream,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
        h = HeaderMap(call.headers)
        h.pop("Authorization")
        h["Connection"] = "Keep-Alive"
        h["Originator"] = lookup(client_headers, "originator") or DEFAULT_ORIGINATOR
        # the account's own headers still win
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))

    def auth_headers(self, call: OAuthCall, token: str) -> dict[str, str]:
        headers = super().auth_headers(call, token)
        # read at send time: a refresh may have brought a new id_token
        record = call.holder.record if call.holder else {}
        account = str(record.get("account_id") or "")
        if not account:
            account = codex_identity(str(record.get("id_token") or ""))["account_id"]
        if account and not any(k.lower() == "chatgpt-account-id" for k in headers):
            headers["Chatgpt-Account-Id"] = account
        return headers
