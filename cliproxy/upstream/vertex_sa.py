# -*- test-case-name: tests.upstream.test_vertex_service_account -*-
"""Vertex service accounts (auth file `type: "vertex"`): Gemini bodies with a minted token.

URL (core.md §2.4): `{host}/v1/projects/{project}/locations/{location}/publishers/google/
models/{model}:{action}`, where the host is `{location}-aiplatform.googleapis.com`, or
`aiplatform.googleapis.com` for `global`, or the file's `base_url`. The bearer token is
minted from the key at send time (`ServiceAccountToken`, cached until near expiry); a 401
from Vertex drops the cached token and the call is sent once more with a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

from twisted.logger import Logger
from twisted.web.iweb import IResponse

from cliproxy.credentials.keyfiles import DEFAULT_LOCATION, service_account_of
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.service_account import ServiceAccountToken, TokenUnavailable
from cliproxy.upstream.base import UpstreamCall, UpstreamConfigError, base_url
from cliproxy.upstream.body import read_body
from cliproxy.upstream.imagen import imagen_response, is_imagen, predict_call
from cliproxy.upstream.oauth_call import local_error
from cliproxy.upstream.vertex import VertexExecutor

__all__ = ["ServiceAccountCall", "VertexServiceAccountExecutor"]

log = Logger()


@dataclass(frozen=True)
class ServiceAccountCall(UpstreamCall):
    """An `UpstreamCall` whose bearer token `send` takes from `token`."""

    token: ServiceAccountToken | None = field(default=None, repr=False, compare=False)
    account: str = ""
    #: an Imagen model: the `:predict` answer is turned into a Gemini one
    imagen: str = ""


class VertexServiceAccountExecutor(VertexExecutor):
    """Vertex with a service account's token, on its project and location."""

    kinds = ("oauth:vertex",)

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
        token = service_account_of(cred)
        if token is None:
            raise UpstreamConfigError(f"credential {cred.label} carries no service account")
        imagen = is_imagen(model) and action == "generate"
        # VertexExecutor refuses Imagen (API keys); here it is served through :predict
        if imagen:
            call = predict_call(
                self, cred, model=model, body=body, stream=stream, client_headers=client_headers
            )
        else:
            call = VertexExecutor.build(
                self,
                cred,
                model=model,
                body=body,
                stream=stream,
                action=action,
                client_headers=client_headers,
                alt=alt,
            )
        host = base_url(cred, None)
        project = quote(str(cred.option("project_id") or ""), safe="-._~")
        location = quote(str(cred.option("location") or DEFAULT_LOCATION), safe="-._~")
        url = call.url
        if action != "models":
            scoped = f"{host}/v1/projects/{project}/locations/{location}/publishers/"
            url = scoped + url.removeprefix(f"{host}/v1/publishers/")
        headers = {k: v for k, v in call.headers.items() if k.lower() != "x-goog-api-key"}
        values = {f.name: getattr(call, f.name) for f in fields(UpstreamCall)}
        values.update(url=url, headers=headers)
        return ServiceAccountCall(
            **values, token=token, account=cred.id, imagen=model if imagen else ""
        )

    async def send(
        self, http: HTTPRequester, call: UpstreamCall, proxy_url: str | None, timeout: float | None
    ) -> IResponse:
        if not isinstance(call, ServiceAccountCall) or call.token is None:
            raise UpstreamConfigError("a Vertex service-account call without its token")
        holder = call.token
        for attempt in (1, 2):
            try:
                token = await holder.token(http, proxy_url)
            except TokenUnavailable as e:
                if e.permanent:
                    return local_error(401, e.message, "authentication_error")
                return local_error(503, e.message, "auth_unavailable")
            headers = dict(call.headers, Authorization=f"Bearer {token}")
            response = await http.request(
                call.method,
                call.url,
                headers=headers,
                body=call.body,
                proxy_url=proxy_url,
                timeout_headers=timeout,
            )
            if call.imagen:
                response = await imagen_response(response, call.imagen)
            if response.code != 401 or attempt == 2:
                return response
            log.info("{account}: Vertex answered 401; minting a new token", account=call.account)
            holder.forget(token)
            await _discard(response)
        raise AssertionError("unreachable")


async def _discard(response: IResponse) -> None:
    try:
        await read_body(response, 256 * 1024)
    except Exception:
        pass  # the answer is replaced by the retry's
