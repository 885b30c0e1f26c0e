# -*- test-case-name: tests.upstream.test_kimi -*-
"""Kimi Code accounts (auth file `type: "kimi"`): OpenAI Chat Completions with an OAuth token.

As CLIProxyAPI's `kimi_executor.go`: `POST {api}/v1/chat/completions` (api:
`https://api.kimi.com/coding`, or `oauth-endpoints.kimi.api-url`) with the access token as
bearer and the `X-Msh-*` device headers Kimi Code's service expects; the device id is
the file's `device_id` (the one its login registered), else one derived from the file name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cliproxy import __version__
from cliproxy.config.model import KIMI_API_URL
from cliproxy.credentials.model import Credential
from cliproxy.credentials.oauth.kimi_login import device_headers
from cliproxy.credentials.oauth.refresh_rules import kimi_device_id
from cliproxy.upstream.base import UpstreamCall
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import OAuthSender, oauth_call, require_holder
from cliproxy.upstream.openai_compat import OpenAICompatExecutor

__all__ = ["KimiExecutor"]


class KimiExecutor(OAuthSender, OpenAICompatExecutor):
    """Chat Completions on Kimi Code's API with the account's token."""

    provider = "kimi"
    kinds = ("oauth:kimi",)
    path = "/v1/chat/completions"

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
        if not cred.base_url:
            cred = replace(cred, base_url=KIMI_API_URL)
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
        h["User-Agent"] = f"cliproxy/{__version__}"
        for name, value in device_headers(kimi_device_id(holder.record, cred.id)).items():
            h[name] = value
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))
