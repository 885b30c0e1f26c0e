# -*- test-case-name: tests.upstream.test_vertex_key_imagen -*-
"""Vertex API keys (`vertex-api-key`) with Imagen: the `VertexExecutor` for Gemini models,
and `:predict` for Imagen models, as service accounts do (CLIProxyAPI's
`executeWithAPIKey` picks `predict` for `imagen*` the same way).

`POST {base}/v1/publishers/google/models/{imagen model}:predict` with `x-goog-api-key`; the
Gemini request becomes Imagen's (`instances[].prompt`, `parameters`) and its
`predictions` come back as Gemini `inlineData` parts. Imagen answers once: a streamed
request for one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from twisted.web.iweb import IResponse

from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.upstream.base import UpstreamCall
from cliproxy.upstream.imagen import imagen_response, is_imagen, predict_call
from cliproxy.upstream.vertex import VertexExecutor

__all__ = ["ImagenCall", "VertexKeyExecutor"]


@dataclass(frozen=True)
class ImagenCall(UpstreamCall):
    """A `:predict` call; `model` names the Imagen model for the answer."""

    model: str = ""


class VertexKeyExecutor(VertexExecutor):
    """`VertexExecutor` plus Imagen through `:predict`."""

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
        if not (is_imagen(model) and action == "generate"):
            return super().build(
                cred,
                model=model,
                body=body,
                stream=stream,
                action=action,
                client_headers=client_headers,
                alt=alt,
            )
        # VertexExecutor refuses Imagen; its URL and key come from the Gemini builder
        call = predict_call(
            self, cred, model=model, body=body, stream=stream, client_headers=client_headers
        )
        values = {f.name: getattr(call, f.name) for f in fields(UpstreamCall)}
        return ImagenCall(**values, model=model)

    async def send(
        self, http: HTTPRequester, call: UpstreamCall, proxy_url: str | None, timeout: float | None
    ) -> IResponse:
        response = await super().send(http, call, proxy_url, timeout)
        if isinstance(call, ImagenCall):
            return await imagen_response(response, call.model)
        return response
