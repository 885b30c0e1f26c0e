# -*- test-case-name: tests.upstream.test_kimi -*-
"""Kimi Code accounts (auth file `type: "kimi"`): OpenAI Chat Completions with an OAuth token.

As CLIProxyAPI's `kimi_executor.go`: `POST {api}/v1/chat/completions` (api:
`https://api.kimi.com/coding`, or `oauth-endpoints.kimi.api-url`) with the access token as
bearer and the `X-Msh-*` device headers Kimi Code's service expects; the device id is
the file's `device_id` (the one its login registered), else one derived from the file name.
"""

from __future__ import annotations

import platform
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cliproxy import __version__
from cliproxy.config.model import KIMI_API_URL
from cliproxy.credentials.model import Credential
from cliproxy.upstream.base import UpstreamCall
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import OAuthSender, oauth_call, require_holder
from cliproxy.upstream.openai_compat import OpenAICompatExecutor

__all__ = ["KimiExecutor"]


def _device_model() -> str:
    return f"{platform.system()} {platform.release()} {platform.machine()}".strip()


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
        device = str(holder.record.get("device_id") or "") or str(
            uuid.uuid5(uuid.NAMESPACE_URL, "cliproxy-kimi-device:" + cred.id)
        )
        h = HeaderMap(call.headers)
        h.pop("Authorization")
        h["User-Agent"] = f"cliproxy/{__version__}"
        h["X-Msh-Platform"] = "CLIProxyAPI"
        h["X-Msh-Version"] = __version__
        h["X-Msh-Device-Name"] = socket.gethostname() or "unknown"
        h["X-Msh-Device-Model"] = _device_model()
        h["X-Msh-Device-Id"] = device
        return oauth_call(call, holder, cred.id, headers=self._custom(h, cred))
