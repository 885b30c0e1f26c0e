# -*- test-case-name: tests.upstream.test_antigravity -*-
"""Antigravity accounts (auth file `type: "antigravity"`): Cloud Code's v1internal API as
Google's Antigravity IDE calls it (CLIProxyAPI's `antigravity_executor.go`).

Same envelope and answers as Gemini CLI accounts (`{"project","model","request"}` in,
`{"response": ...}` out, unwrapped here), with Antigravity's additions: `userAgent:
"antigravity"`, `requestType` (`agent`, or `image_gen` for image models), a `requestId`
(`agent-<uuid>`; `image_gen/<ms>/<uuid>/12`), and `request.sessionId`, stable per
conversation (a hash of its first user text), which keeps it on the same backend cache.
`request.safetySettings` is not sent. Claude models are always streamed upstream (a
plain request gets the gathered stream as one answer), as CLIProxyAPI does. Tool schemas
go as `parameters`, cleaned for Gemini; Claude models get
`toolConfig.functionCallingConfig.mode: VALIDATED`, other models lose
`generationConfig.maxOutputTokens` (as CLIProxyAPI sends them).

Base URL: the file's `base_url`, else `oauth-endpoints.antigravity.api-url` (the daily
Cloud Code host), which hands a call that is rate limited (429), out of capacity (503 "no
capacity available") or unreachable once to `code-assist-url` (the production host), as
CLIProxyAPI's base URL order does; a file's own `base_url` has no fallback. Headers: bearer
token and `User-Agent: antigravity/hub/<version> darwin/arm64` (a file's `user_agent`
overrides). A file without `project_id` gets one from
`loadCodeAssist`/`onboardUser` before its first request.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.iweb import IResponse

from cliproxy.config.model import ANTIGRAVITY_API_URL, AntigravityEndpoints
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth import antigravity as account
from cliproxy.credentials.oauth.google import GoogleError
from cliproxy.formats.requests.schema import clean_schema_for_gemini
from cliproxy.formats.responses_side.aggregate import AggregateError, GeminiAggregator
from cliproxy.formats.sse import SSEDecoder
from cliproxy.upstream.base import UpstreamCall, json_bytes
from cliproxy.upstream.body import read_body
from cliproxy.upstream.gemini_cli import GeminiCLIExecutor, envelope_request
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import (
    BufferedResponse,
    OAuthCall,
    local_error,
    oauth_call,
    require_holder,
)

__all__ = ["AntigravityCall", "AntigravityExecutor", "antigravity_payload", "session_id"]

log = Logger()


def session_id(request: dict[str, Any]) -> str:
    """`-<n>`: from a hash of the first user text, so one conversation keeps its id."""
    for content in request.get("contents") or ():
        if isinstance(content, dict) and content.get("role") == "user":
            parts = content.get("parts") or [{}]
            text = parts[0].get("text") if isinstance(parts[0], dict) else None
            if isinstance(text, str) and text:
                digest = hashlib.sha256(text.encode("utf-8")).digest()
                return "-" + str(int.from_bytes(digest[:8], "big") & 0x7FFFFFFFFFFFFFFF)
    return "-" + str(uuid.uuid4().int % 9_000_000_000_000_000_000)


def _clean_tools(tools: Any) -> Any:
    if not isinstance(tools, list):
        return tools
    out = []
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("functionDeclarations"), list):
            decls = []
            for decl in tool["functionDeclarations"]:
                if isinstance(decl, dict):
                    decl = dict(decl)
                    schema = decl.pop("parametersJsonSchema", None)
                    if schema is None:
                        schema = decl.pop("parameters", None)
                    if schema is not None:
                        decl["parameters"] = clean_schema_for_gemini(schema)
                decls.append(decl)
            tool = dict(tool, functionDeclarations=decls)
        out.append(tool)
    return out


def antigravity_payload(model: str, body: dict[str, Any], project: str) -> dict[str, Any]:
    """The Cloud Code envelope Antigravity sends for a Gemini `body`."""
    request = envelope_request(body)
    request.pop("safetySettings", None)
    image = "image" in model
    payload: dict[str, Any] = {"model": model, "userAgent": "antigravity"}
    payload["requestType"] = "image_gen" if image else "agent"
    if project:
        payload["project"] = project
    if image:
        payload["requestId"] = f"image_gen/{int(time.time() * 1000)}/{uuid.uuid4()}/12"
    else:
        payload["requestId"] = f"agent-{uuid.uuid4()}"
        request["sessionId"] = session_id(request)
    if request.get("tools"):
        request["tools"] = _clean_tools(request["tools"])
    if "claude" in model:
        config = dict(request.get("toolConfig") or {})
        config["functionCallingConfig"] = dict(
            config.get("functionCallingConfig") or {}, mode="VALIDATED"
        )
        request["toolConfig"] = config
    elif isinstance(request.get("generationConfig"), dict):
        request["generationConfig"] = {
            k: v for k, v in request["generationConfig"].items() if k != "maxOutputTokens"
        }
    payload["request"] = request
    return payload


#: the Credential option naming the host a call moves to once (see `_request`)
FALLBACK_OPTION = "fallback_base"
#: a 429/503 body read to decide on the fallback is kept up to this size
FALLBACK_BODY_LIMIT = 256 * 1024
#: a gathered stream is read whole, up to this size
GATHER_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class AntigravityCall(OAuthCall):
    """An `OAuthCall` with the base URL to try once when the first host refuses."""

    fallback: str = ""
    #: a plain answer asked of a streamed call: the stream is gathered into one (Claude)
    gather: bool = False


def _code_assist_url(base: str) -> str:
    """Where `loadCodeAssist` goes: the production host for the default daily one."""
    return AntigravityEndpoints().code_assist_url if base == ANTIGRAVITY_API_URL else base


class AntigravityExecutor(GeminiCLIExecutor):
    """POST {base}/v1internal:generateContent | :streamGenerateContent?alt=sse | :countTokens."""

    provider = "antigravity"
    kinds = ("oauth:antigravity",)

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
        # Claude models are always streamed upstream; a plain answer is put together here
        gather = action == "generate" and not stream and "claude" in model
        # Gemini CLI's call (URL, envelope, token holder), then Antigravity's body and headers
        call = super().build(
            replace(cred, headers=(), base_url=cred.base_url or ANTIGRAVITY_API_URL),
            model=model,
            body=body,
            stream=stream or gather,
            action=action,
            client_headers=client_headers,
            alt=alt,
        )
        holder = require_holder(cred)
        payload = json.loads(call.body)
        if action == "generate":
            model = model.removeprefix("models/")
            payload = antigravity_payload(model, body, str(payload.get("project") or ""))
        h = HeaderMap(call.headers)
        h.pop("X-Goog-Api-Client")
        own = str(holder.record.get("user_agent") or "").strip()
        h["User-Agent"] = own or account.USER_AGENT
        done = oauth_call(
            call, holder, cred.id, headers=self._custom(h, cred), body=json_bytes(payload)
        )
        values = {f.name: getattr(done, f.name) for f in fields(OAuthCall)}
        fallback = str(cred.option(FALLBACK_OPTION) or "")
        return AntigravityCall(**values, fallback=fallback, gather=gather)

    async def send(
        self, http: HTTPRequester, call: UpstreamCall, proxy_url: str | None, timeout: float | None
    ) -> IResponse:
        response = await super().send(http, call, proxy_url, timeout)
        if not (isinstance(call, AntigravityCall) and call.gather and response.code == 200):
            return response
        raw = await read_body(response, GATHER_LIMIT)
        decoder, gathered = SSEDecoder(), GeminiAggregator()
        for event in decoder.feed(raw) + decoder.close():
            gathered.feed(event)
        try:
            return BufferedResponse(200, json_bytes(gathered.result()))
        except AggregateError as e:
            status = e.status if 400 <= e.status <= 599 else 502
            error = {"error": {"code": status, "message": e.message, "status": "UNAVAILABLE"}}
            return BufferedResponse(status, json_bytes(error))

    async def before_send(
        self, http: HTTPRequester, call: OAuthCall, token: str, proxy_url: str | None
    ) -> OAuthCall | BufferedResponse:
        if call.action != "generate":
            return call
        payload = json.loads(call.body)
        if payload.get("project"):
            return call
        holder = call.holder
        assert holder is not None
        if not holder.discovered_project:
            base = call.url.split("/v1internal:", 1)[0]
            fallback = call.fallback if isinstance(call, AntigravityCall) else ""
            endpoints = AntigravityEndpoints(
                api_url=base, code_assist_url=fallback or _code_assist_url(base)
            )
            try:
                holder.discovered_project = await account.discover_project(
                    http, endpoints, token, holder.clock, proxy_url
                )
            except GoogleError as e:
                return local_error(
                    503,
                    f"{call.account}: antigravity auth missing project_id ({e.message})",
                    "auth_unavailable",
                )
            log.info(
                "{account}: using Antigravity project {project}",
                account=call.account,
                project=holder.discovered_project,
            )
        payload["project"] = holder.discovered_project
        return replace(call, body=json_bytes(payload))

    async def _request(
        self,
        http: HTTPRequester,
        call: OAuthCall,
        token: str,
        proxy_url: str | None,
        timeout: float | None,
    ) -> IResponse:
        """Send; from the daily host, once more at the fallback host when the first is rate
        limited, out of capacity or cannot be reached (as CLIProxyAPI's base URL order)."""
        fallback = call.fallback if isinstance(call, AntigravityCall) else ""
        if not fallback:
            return await super()._request(http, call, token, proxy_url, timeout)
        moved = _moved(call, fallback)
        try:
            response = await super()._request(http, call, token, proxy_url, timeout)
        except defer.CancelledError:
            raise
        except Exception as e:
            log.info(
                "{account}: {url} cannot be reached ({error}); trying {fallback}",
                account=call.account,
                url=call.url.split("/v1internal:", 1)[0],
                error=type(e).__name__,
                fallback=fallback,
            )
            return await super()._request(http, moved, token, proxy_url, timeout)
        if response.code not in (429, 503):
            return response
        body = await read_body(response, FALLBACK_BODY_LIMIT)
        if response.code == 503 and b"no capacity available" not in body.lower():
            return BufferedResponse(response.code, body, response.headers.copy())
        log.info(
            "{account}: Antigravity answered {status}; trying {fallback}",
            account=call.account,
            status=response.code,
            fallback=fallback,
        )
        return await super()._request(http, moved, token, proxy_url, timeout)


def _moved(call: OAuthCall, base: str) -> AntigravityCall:
    """`call` sent to `base` instead, with no further fallback."""
    path = call.url.split("/v1internal:", 1)[1]
    values = {f.name: getattr(call, f.name) for f in fields(OAuthCall)}
    values["url"] = f"{base}/v1internal:{path}"
    return AntigravityCall(
        **values, gather=call.gather if isinstance(call, AntigravityCall) else False
    )
