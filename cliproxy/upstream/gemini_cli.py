# -*- test-case-name: tests.oauth.test_executors -*-
"""Gemini CLI accounts (auth file `type: "gemini"`): Cloud Code's v1internal API (core.md §2.2).

Requests are Gemini `generateContent` bodies inside the Cloud Code envelope
`{"project", "model", "request"}`, sent to `{base}/v1internal:<action>` with the Google
token as bearer. Answers carry the Gemini response under `response`; this executor
unwraps it (per SSE event for streams), so the router and translators see plain Gemini.
A file that names no project gets one from `loadCodeAssist` (onboarding a free one
when needed) before its first request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocol, ITransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface import implementer

from cliproxy.config.model import CODE_ASSIST_URL
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester, body_transport
from cliproxy.credentials.oauth import google
from cliproxy.formats import Format
from cliproxy.upstream.base import Executor, UpstreamCall, base_url, json_bytes
from cliproxy.upstream.body import BodyDecodeError, Decompressor, declared_encoding
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.oauth_call import (
    BufferedResponse,
    OAuthCall,
    OAuthSender,
    local_error,
    oauth_call,
    require_holder,
)

__all__ = ["GeminiCLIExecutor", "UnwrappedResponse", "envelope_request"]

log = Logger()

GOOG_API_CLIENT = "google-genai-sdk/1.41.0 gl-node/v22.19.0"
_NOT_SENT = ("model", "session_id")
_ROLES = ("user", "model")


def _fix_roles(contents: Any) -> Any:
    """Missing or unknown roles alternate user/model, as Cloud Code insists on them."""
    if not isinstance(contents, list):
        return contents
    out, previous = [], ""
    for item in contents:
        if isinstance(item, dict) and item.get("role") not in _ROLES:
            item = dict(item, role="model" if previous == "user" else "user")
        if isinstance(item, dict):
            previous = str(item.get("role"))
        out.append(item)
    return out


def envelope_request(body: dict[str, Any], *, count: bool = False) -> dict[str, Any]:
    """The `request` part of the envelope from a Gemini body."""
    request = {k: v for k, v in body.items() if k not in _NOT_SENT}
    if "system_instruction" in request:
        system = request.pop("system_instruction")
        request.setdefault("systemInstruction", system)
    if "contents" in request:
        request["contents"] = _fix_roles(request["contents"])
    if count:
        request.pop("safetySettings", None)
    return request


class GeminiCLIExecutor(OAuthSender, Executor):
    """POST {base}/v1internal:generateContent | :streamGenerateContent?alt=sse | :countTokens."""

    provider = "gemini-cli"
    format = Format.GEMINI
    kinds = ("oauth:gemini-cli",)

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
        self._check_action(action, ("generate", "count_tokens"), self.provider)
        holder = require_holder(cred)
        base = base_url(cred, CODE_ASSIST_URL)
        model = model.removeprefix("models/")
        if action == "count_tokens":
            stream = False
            payload: dict[str, Any] = {"request": envelope_request(body, count=True)}
            url = f"{base}/v1internal:countTokens"
        else:
            project = str(cred.option("project_id") or holder.discovered_project or "")
            payload = {"project": project, "model": model, "request": envelope_request(body)}
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            url = f"{base}/v1internal:{method}"
        h = HeaderMap()
        h["Content-Type"] = "application/json"
        h["Accept"] = "text/event-stream" if stream else "application/json"
        # the envelope is unwrapped as it arrives: ask for it uncompressed
        h["Accept-Encoding"] = "identity"
        h["User-Agent"] = google.gemini_cli_user_agent(model)
        h["X-Goog-Api-Client"] = GOOG_API_CLIENT
        call = UpstreamCall(
            "POST", url, self._custom(h, cred), json_bytes(payload), stream, self.provider, action
        )
        return oauth_call(call, holder, cred.id)

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
            try:
                holder.discovered_project = await google.discover_project(
                    http, base, token, holder.clock, proxy_url
                )
            except google.GoogleError as e:
                return local_error(503, f"{call.account}: {e.message}", "auth_unavailable")
            if not holder.discovered_project:
                return local_error(
                    403,
                    f"{call.account} has no Gemini Code Assist project; run "
                    "`cliproxy login gemini --project_id <id>`",
                    "permission_denied",
                )
            log.info(
                "{account}: using Code Assist project {project}",
                account=call.account,
                project=holder.discovered_project,
            )
        payload["project"] = holder.discovered_project
        return oauth_call(call, holder, call.account, body=json_bytes(payload))

    def wrap_response(self, call: OAuthCall, response: IResponse) -> IResponse:
        if call.action == "count_tokens":
            return response
        return UnwrappedResponse(response, call.stream)


def _unwrap(data: bytes) -> bytes:
    """The `response` member of one envelope (the bytes unchanged if there is none)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    if isinstance(value, dict) and isinstance(value.get("response"), dict):
        return json_bytes(value["response"])
    if isinstance(value, list):  # a non-SSE stream: a JSON array of envelopes
        return json_bytes(
            [v["response"] if isinstance(v, dict) and "response" in v else v for v in value]
        )
    return data


class _Unwrapper(Protocol):
    """Passes the body to `inner`, with each envelope replaced by its `response`."""

    def __init__(self, inner: IProtocol, stream: bool, encoding: str | None) -> None:
        self.inner = inner
        self.stream = stream
        self._decoder = Decompressor(encoding) if encoding else None
        self._buffer = b""
        self._failed = False

    def makeConnection(self, transport: ITransport) -> None:
        Protocol.makeConnection(self, transport)
        self.inner.makeConnection(transport)

    def _decode(self, data: bytes) -> bytes:
        return self._decoder.feed(data) if self._decoder is not None else data

    def dataReceived(self, data: bytes) -> None:
        if self._failed:
            return
        try:
            data = self._decode(data)
        except BodyDecodeError:
            self._failed = True
            transport = body_transport(self)
            if transport is not None:
                transport.stopProducing()
            return
        if not self.stream:
            self._buffer += data
            return
        self._buffer += data
        cut = self._buffer.rfind(b"\n")
        if cut < 0:
            return
        ready, self._buffer = self._buffer[: cut + 1], self._buffer[cut + 1 :]
        self.inner.dataReceived(self._lines(ready))

    def _lines(self, block: bytes) -> bytes:
        out = []
        for line in block.split(b"\n"):
            end = b"\r" if line.endswith(b"\r") else b""
            text = line[:-1] if end else line
            if text.startswith(b"data:"):
                payload = text[5:].lstrip(b" ")
                if payload and payload != b"[DONE]":
                    text = b"data: " + _unwrap(payload)
            out.append(text + end)
        return b"\n".join(out)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        clean = reason is None or reason.check(ResponseDone, PotentialDataLoss)
        try:
            if self._decoder is not None and clean and not self._failed:
                self._buffer += self._decoder.flush()
        except BodyDecodeError:
            reason, clean = Failure(), False
        if clean and not self._failed and self._buffer:
            rest, self._buffer = self._buffer, b""
            self.inner.dataReceived(self._lines(rest) if self.stream else _unwrap(rest))
        if self._failed:
            reason = Failure(BodyDecodeError("undecodable Cloud Code answer"))
        self.inner.connectionLost(reason)


@implementer(IResponse)
class UnwrappedResponse:
    """An `IResponse` view of a Cloud Code answer with the envelopes removed."""

    def __init__(self, response: IResponse, stream: bool) -> None:
        self._response = response
        self._stream = stream
        self.code = response.code
        self.phrase = getattr(response, "phrase", b"OK")
        self.version = getattr(response, "version", (b"HTTP", 1, 1))
        self.headers = response.headers.copy()
        self._encoding = declared_encoding(response.headers)
        self.headers.removeHeader(b"content-encoding")
        self.headers.removeHeader(b"content-length")
        self.length = UNKNOWN_LENGTH
        self.request = getattr(response, "request", None)
        self.previousResponse: IResponse | None = None

    def deliverBody(self, protocol: IProtocol) -> None:
        try:
            unwrapper = _Unwrapper(protocol, self._stream, self._encoding)
        except BodyDecodeError:
            # an encoding we cannot undo: hand the bytes over as they are
            self._response.deliverBody(protocol)
            return
        self._response.deliverBody(unwrapper)

    def setPreviousResponse(self, response: IResponse) -> None:
        self.previousResponse = response
