# -*- test-case-name: tests.credentials.test_xai -*-
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

from cliproxy.credentials.model import Credential
from cliproxy.credentials.oauth.holder import TokenHolder
from cliproxy.upstream.token_over_key import TokenOverKey
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


class XAIOAuthExecutor(TokenOverKey, XAIExecutor):
    """POST {base}/responses (stream) with the account's token."""

    kinds = ("oauth:xai",)

    def account_headers(self, cred: Credential, holder: TokenHolder, action: str) -> dict[str, str]:
        if cred.option("xai_chat_proxy") and action == "generate":
            return dict(CHAT_PROXY_HEADERS)
        return {}
