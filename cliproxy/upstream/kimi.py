# -*- test-case-name: tests.upstream.test_kimi -*-
"""Kimi Code accounts (auth file `type: "kimi"`): OpenAI Chat Completions with an OAuth token.

As CLIProxyAPI's `kimi_executor.go`: `POST {api}/v1/chat/completions` (api:
`https://api.kimi.com/coding`, or `oauth-endpoints.kimi.api-url`) with the access token as
bearer and the `X-Msh-*` device headers Kimi Code's service expects; the device id is
the file's `device_id` (the one its login registered), else one derived from the file name.
"""

from __future__ import annotations

from cliproxy import __version__
from cliproxy.config.model import KIMI_API_URL
from cliproxy.credentials.model import Credential
from cliproxy.credentials.oauth.holder import TokenHolder
from cliproxy.credentials.oauth.kimi_login import device_headers
from cliproxy.credentials.oauth.refresh_rules import kimi_device_id
from cliproxy.upstream.openai_compat import OpenAICompatExecutor
from cliproxy.upstream.token_over_key import TokenOverKey

__all__ = ["KimiExecutor"]


class KimiExecutor(TokenOverKey, OpenAICompatExecutor):
    """Chat Completions on Kimi Code's API with the account's token."""

    provider = "kimi"
    kinds = ("oauth:kimi",)
    path = "/v1/chat/completions"
    default_base = KIMI_API_URL

    def account_headers(self, cred: Credential, holder: TokenHolder, action: str) -> dict[str, str]:
        return {
            "User-Agent": f"cliproxy/{__version__}",
            **device_headers(kimi_device_id(holder.record, cred.id)),
        }
