# -*- test-case-name: tests.test_routing -*-
"""One credential tried once for one client request.

An `Attempt` translates the request for the credential's provider, sends it, and either
classifies a failure (benching the credential where another might do better) or builds
the answer: a whole JSON body, or an upstream stream whose first bytes have arrived.
Nothing reaches the client from here, so a failure can still fail over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from cliproxy.config import Config
from cliproxy.credentials.pool import CredentialPool
from cliproxy.formats.requests import client_tools
from cliproxy.formats.responses_side import AggregateError, stream_translator
from cliproxy.registry import Candidate
from cliproxy.routing.bodies import (
    aggregate,
    client_answer,
    count_answer,
    local_count,
    provider_request,
)
from cliproxy.routing.classify import (
    AttemptFailure,
    is_model_unsupported,
    is_request_invalid,
    retry_hint,
)
from cliproxy.routing.offload import BUSY_RETRY_SECONDS, Busy, LargeBodies
from cliproxy.routing.results import (
    BootstrapSink,
    ClientRequest,
    JSONResult,
    RawHeaders,
    RouteError,
    StreamResult,
    UpstreamExchange,
)
from cliproxy.upstream import UnsupportedAction, UpstreamCall, UpstreamConfigError, executor_for
from cliproxy.upstream.body import read_body
from cliproxy.upstream.headers import filter_response_headers
from cliproxy.upstream.http import HeaderTimeout, UpstreamHTTP
from cliproxy.upstream.payload import apply_payload_rules, client_protocol, provider_protocol
from cliproxy.upstream.stream import deliver_stream
from cliproxy.usage import CallTiming, Usage, UsageBook, usage_of

log = Logger()

#: upstream error bodies are read up to this size; the rest is dropped
ERROR_BODY_LIMIT = 256 * 1024
#: non-stream upstream answers are read up to this size
RESPONSE_BODY_LIMIT = 64 * 1024 * 1024

#: what one attempt comes to
Outcome = JSONResult | StreamResult | AttemptFailure


@dataclass(frozen=True, slots=True)
class AttemptServices:
    """What every attempt uses: time, the credential pool, HTTP, the usage book and the
    worker threads for large bodies."""

    clock: IReactorTime
    pool: CredentialPool
    http: UpstreamHTTP
    usage: UsageBook
    bodies: LargeBodies


def passthrough_headers(headers: Headers) -> RawHeaders:
    """Upstream headers a client may see; the answer's framing headers stay ours."""
    return [
        (name, values)
        for name, values in filter_response_headers(
            (name, list(values)) for name, values in headers.getAllRawHeaders()
        )
        if name.lower() not in (b"content-type", b"transfer-encoding", b"date", b"server")
    ]


class Attempt:
    """`req` served by `candidate`'s credential, once; `run` says how it went.

    Raises (from `run`):
        RouteError: the client's request cannot be translated, or the upstream's 2xx
            answer is unreadable or carried its own failure.
        CancelledError: the client left; the credential is not benched for it.
    """

    def __init__(
        self,
        req: ClientRequest,
        candidate: Candidate,
        thinking_suffix: str | None,
        config: Config,
        services: AttemptServices,
    ) -> None:
        self.req = req
        self.candidate = candidate
        self.cred = candidate.credential
        self.model = candidate.upstream_model
        self.thinking_suffix = thinking_suffix
        self.config = config
        self.services = services
        self.pool = services.pool
        self.executor = executor_for(self.cred)
        self.timing = CallTiming(services.clock.seconds)  # latency and ttft for usage
        self.provider = self.executor.format
        # an always-streaming upstream (Codex) streams model calls; compact is one JSON call
        self.upstream_stream = req.stream or (
            self.executor.always_streams and req.action == "generate"
        )
        self.exchange: UpstreamExchange | None = None  # for the request log

    async def run(self) -> Outcome:
        try:
            # a large body is translated on a worker thread, so other streams keep flowing
            prepared = await self.services.bodies.call(self.req.size, self._prepare)
        except Busy as e:
            raise RouteError(503, str(e), headers={"Retry-After": str(BUSY_RETRY_SECONDS)}) from e
        if isinstance(prepared, bytes):
            return JSONResult(200, prepared)
        if isinstance(prepared, Exception):
            log.warn(
                "credential {cred} cannot serve {model}: {error}",
                cred=self.cred.label,
                model=self.model,
                error=str(prepared),
            )
            return AttemptFailure(501, str(prepared).encode())
        response = await self._send(prepared)
        if isinstance(response, AttemptFailure):
            return response
        if response.code >= 400:
            return await self._rejected(response)
        return await self._accepted(response)

    # -- sending ---------------------------------------------------------------------------

    def _prepare(self) -> UpstreamCall | bytes | UnsupportedAction | UpstreamConfigError:
        """A local token count, or the upstream call with the translated body.

        Pure (no Twisted, no logging, nothing shared is written): it may run on a worker
        thread. An unusable credential comes back as its exception, for the reactor to log.

        Raises:
            RouteError: 400, the client's body cannot be translated.
        """
        req = self.req
        if req.action == "count_tokens":
            local = local_count(req, self.provider)
            if local is not None:
                return local
        body = provider_request(
            req,
            self.provider,
            model=self.model,
            spec=self.candidate.spec,
            thinking_suffix=self.thinking_suffix,
            stream=self.upstream_stream,
        )
        if self.config.payload.any() and req.action in ("generate", "compact"):
            body = apply_payload_rules(
                self.config.payload,
                body,
                model=self.model,
                requested_model=req.model,
                protocol=provider_protocol(self.executor.provider, self.provider),
                from_protocol=client_protocol(req.format),
                headers=req.headers,
            )
        try:
            call = self.executor.build(
                self.cred,
                model=self.model,
                body=body,
                stream=self.upstream_stream,
                action=req.action,
                client_headers=req.headers,
                # upstream streams are always asked for SSE; the translator frames the
                # client's answer (a JSON array when its alt is not sse)
                alt=None,
            )
            defaults = {
                "claude": self.config.claude_header_defaults,
                "codex": self.config.codex_header_defaults,
            }.get(self.executor.provider, ())
            return self.executor.finish(call, self.cred, self.req.headers, defaults)
        except (UnsupportedAction, UpstreamConfigError) as e:
            return e

    def _transcribe(self, call: UpstreamCall) -> UpstreamExchange | None:
        if self.req.transcript is None:
            return None
        ex = UpstreamExchange.of(call.method, call.url, call.headers, call.body)
        self.req.transcript.append(ex)
        return ex

    async def _send(self, call: UpstreamCall) -> IResponse | AttemptFailure:
        cred, model, config = self.cred, self.model, self.config
        ex = self.exchange = self._transcribe(call)
        self.timing.start()
        try:
            response: IResponse = await self.executor.send(
                self.services.http,
                call,
                cred.proxy_url or config.proxy_url,
                config.upstream_timeouts.headers_seconds,
            )
        except defer.CancelledError:
            self.pool.mark_cancelled(cred, model)
            raise
        except HeaderTimeout as e:
            UpstreamExchange.failed(ex, e)
            log.warn("upstream {cred} did not answer {model} in time", cred=cred.label, model=model)
            return AttemptFailure(504, str(e).encode())
        except Exception as e:
            UpstreamExchange.failed(ex, e)
            log.warn(
                "upstream {cred} unreachable for {model}: {error}",
                cred=cred.label,
                model=model,
                error=type(e).__name__,
            )
            self._record(502, self.req.stream)
            return AttemptFailure(502, b"upstream unreachable: " + type(e).__name__.encode())
        if ex is not None:
            ex.answered(response.code, response.headers.getAllRawHeaders())
        self.timing.mark_first_byte()
        return response

    async def _read(self, response: IResponse, limit: int) -> bytes:
        try:
            body: bytes = await read_body(response, limit)
        except defer.CancelledError:
            self.pool.mark_cancelled(self.cred, self.model)
            raise
        if self.exchange is not None:
            self.exchange.received(body)
        return body

    # -- a refusal -------------------------------------------------------------------------

    async def _rejected(self, response: IResponse) -> AttemptFailure:
        """An upstream status >= 400: bench the credential unless the request is at fault."""
        status: int = response.code
        try:
            raw = await self._read(response, ERROR_BODY_LIMIT)
        except defer.CancelledError:
            raise
        except Exception:
            raw = b""
        hint = retry_hint(response.headers, raw, self.services.clock.seconds())
        retry_after = hint.seconds
        invalid = is_request_invalid(status, raw)
        if not invalid:
            cooldown = self.pool.mark_failure(
                self.cred,
                self.model,
                status,
                retry_after,
                model_unsupported=is_model_unsupported(status, raw),
                reason=hint.reason,
            )
            log.info(
                "upstream {cred} answered {status} for {model}; resting {cooldown:.0f}s",
                cred=self.cred.label,
                status=status,
                model=self.model,
                cooldown=cooldown or 0.0,
            )
        self._record(status, self.req.stream)
        return AttemptFailure(status, raw, retry_after, invalid)

    # -- an answer -------------------------------------------------------------------------

    async def _accepted(self, response: IResponse) -> Outcome:
        result: JSONResult | StreamResult
        if self.req.stream and self.req.action == "generate":
            started = await self._bootstrap(response)
            if started is None:
                # nothing reached the client yet, so another credential can still serve it
                log.info(
                    "upstream {cred} closed the stream for {model} before sending anything",
                    cred=self.cred.label,
                    model=self.model,
                )
                return AttemptFailure(502, b"upstream closed the stream before sending anything")
            result = self._stream_result(response, started)
        else:
            result = await self._json_result(response)
        if self.config.passthrough_headers:
            result.passthrough = passthrough_headers(response.headers)
        return result

    async def _json_result(self, response: IResponse) -> JSONResult:
        req, provider = self.req, self.provider
        parsed, raw = await self._answer(response)
        self.pool.mark_success(self.cred, self.model)
        if req.action == "count_tokens":
            out = count_answer(req, provider, parsed, raw)
        else:
            out = client_answer(req, provider, parsed, raw)
        self._record(200, False, usage_of(parsed))
        return JSONResult(200, out)

    async def _answer(self, response: IResponse) -> tuple[Any, bytes | None]:
        """The whole upstream answer, parsed, and its raw bytes (None when aggregated)."""
        try:
            raw = await self._read(response, RESPONSE_BODY_LIMIT)
            if self.upstream_stream:
                return aggregate(raw, self.provider), None
            return json.loads(raw), raw
        except defer.CancelledError:
            raise
        except AggregateError as e:
            # the upstream stream carried its own failure (e.g. Codex response.failed)
            self.pool.mark_failure(self.cred, self.model, e.status)
            raise RouteError(e.status, e.message) from e
        except Exception as e:
            log.warn(
                "upstream {cred} sent an unreadable answer: {error}", cred=self.cred.label, error=e
            )
            raise RouteError(502, f"upstream sent an unreadable answer ({type(e).__name__})") from e

    async def _bootstrap(self, response: IResponse) -> BootstrapSink | None:
        """Start reading the stream and wait for its first bytes (core.md §4.3, step 3).

        Returns the sink holding the reader and what has arrived, or None when the
        upstream ended or failed before sending anything.
        """
        sink = BootstrapSink()
        reader = sink.reader = deliver_stream(
            response,
            sink.on_data if self.exchange is None else self.exchange.tee(sink.on_data),
            sink.on_end,
            idle_timeout=self.config.streaming.idle_timeout_seconds,
            clock=self.services.clock,
        )
        try:
            got = await sink.first
            self.timing.mark_first_byte()
        except defer.CancelledError:
            reader.stop()
            raise
        return sink if got else None

    def _stream_result(self, response: IResponse, started: BootstrapSink) -> StreamResult:
        req, provider = self.req, self.provider
        translator = stream_translator(
            provider,
            req.format,
            model=req.model,
            tool_names=client_tools(req.format, provider, req.body),
            gemini_sse=req.alt in (None, "sse"),
        )

        def done(usage: Usage, error: int | None) -> None:
            if error is None:
                self.pool.mark_success(self.cred, self.model)
            elif error == 499:
                self.pool.mark_cancelled(self.cred, self.model)
            self._record(error or 200, True, usage)

        return StreamResult(response, translator, req.format, req.alt, done, started=started)

    def _record(self, status: int, stream: bool, usage: Usage | None = None) -> None:
        self.services.usage.record(
            model=self.req.model,
            provider=self.cred.provider,
            credential_id=self.cred.id,
            client_key=self.req.client_key,
            route=self.req.route,
            status=status,
            stream=stream,
            usage=usage,
            upstream_model=self.model,
            timing=self.timing,
        )
