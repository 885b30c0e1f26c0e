# -*- test-case-name: tests.upstream.test_kimi -*-
"""OAuth accounts that send an API-key executor's request with their token (Kimi over
OpenAI Chat, xAI accounts over the xai-api-key Responses request).

The parent executor builds the call from the credential (a placeholder key, its own
`base_url` or `default_base`); its Authorization is dropped, the account's headers
(`account_headers`) and the credential's own `headers:` are applied, and the bearer
token is added at send time (`OAuthSender`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.credentials.oauth.holder import TokenHolder
from cliproxy.upstream.base import Executor, UpstreamCall
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import OAuthSender, oauth_call, require_holder

__all__ = ["TokenOverKey"]


class TokenOverKey(OAuthSender, Executor):
    """Mixin: put it before the API-key executor whose request the account sends."""

    #: the base URL when the credential names none
    default_base: str = ""

    def account_headers(self, cred: Credential, holder: TokenHolder, action: str) -> dict[str, str]:
        """Headers the account's calls carry besides the token."""
        return {}

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
        keyed = replace(cred, api_key="-", headers=(), base_url=cred.base_url or self.default_base)
        call = super().build(
            keyed,
            model=model,
            body=body,
            stream=stream,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
        h = HeaderMap(call.headers)
        h.pop("Authorization")
        for name, value in self.account_headers(cred, holder, action).items():
            h[name] = value
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))
