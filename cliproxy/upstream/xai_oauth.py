# -*- test-case-name: tests.upstream.test_xai_oauth -*-
"""xAI accounts (auth file `type: "xai"`, `cliproxy login xai`): the `xai-api-key` request
(Responses API, always streamed) with the account's access token as bearer.

Where it goes (CLIProxyAPI's `xaiChatBaseURL`): OAuth files chat through the Grok CLI chat
proxy (`https://cli-chat-proxy.grok.com/v1`, `oauth-endpoints.xai.api-url`) and then also
send the Grok CLI's identity headers (`X-XAI-Token-Auth: xai-grok-cli`,
`x-grok-client-version`, `x-grok-client-identifier: grok-shell`,
`x-authenticateresponse`, `User-Agent: xai-grok-workspace/<version>`); a file with
`using_api: true` talks to the API (`base_url`, default `https://api.x.ai/v1`), and a
`base_url` other than the API's is used as it is, without those headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.upstream.base import UpstreamCall
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import OAuthSender, oauth_call, require_holder
from cliproxy.upstream.xai import XAIExecutor

__all__ = ["CHAT_PROXY_HEADERS", "XAIOAuthExecutor"]

GROK_CLI_VERSION = "0.2.120"
#: what the Grok CLI sends its chat proxy (the proxy refuses other clients)
CHAT_PROXY_HEADERS = {
    "X-XAI-Token-Auth": "xai-grok-cli",
    "x-grok-client-version": GROK_CLI_VERSION,
    "User-Agent": f"xai-grok-workspace/{GROK_CLI_VERSION}",
    "x-grok-client-identifier": "grok-shell",
    "x-authenticateresponse": "authenticate-response",
}


class XAIOAuthExecutor(OAuthSender, XAIExecutor):
    """POST {base}/responses (stream) with the account's token."""

    kinds = ("oauth:xai",)

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
        # the bearer is added at send time; the key-based builder wants a placeholder
        call = super().build(
            replace(cred, api_key="-", headers=()),
            model=model,
            body=body,
            stream=stream,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
        h = HeaderMap(call.headers)
        h.pop("Authorization")
        if cred.option("xai_chat_proxy") and action == "generate":
            for name, value in CHAT_PROXY_HEADERS.items():
                h[name] = value
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))
