# -*- test-case-name: tests.test_routing -*-
"""Where a client request meets models, credentials and executors.

`Router.handle` resolves the model, tries credentials in the pool's order, fails over
while nothing has been sent to the client, benches failing credentials, and hands
back either a finished JSON answer in the client's format or an open upstream stream
with the translator that turns it into the client's format.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from cliproxy.credentials.pool import (
    AllCoolingDown,
    CredentialPool,
    NoCredential,
    SelectionError,
)
from cliproxy.formats import Format, family_of
from cliproxy.formats.errors import upstream_error_object
from cliproxy.formats.requests import (
    TranslationError,
    apply_thinking,
    client_tools,
    count_tokens_request,
    estimate_tokens,
    translate_request,
)
from cliproxy.formats.responses_side import (
    AggregateError,
    aggregate_stream,
    stream_translator,
    translate_response,
)
from cliproxy.formats.sse import SSEDecoder
from cliproxy.registry import ModelRegistry, UnknownModel
from cliproxy.upstream import UnsupportedAction, UpstreamConfigError, executor_for
from cliproxy.upstream.body import read_body
from cliproxy.upstream.headers import filter_response_headers
from cliproxy.upstream.http import HeaderTimeout
from cliproxy.upstream.stream import deliver_stream
from cliproxy.usage import Usage, UsageBook, usage_from_response

log = Logger()

#: upstream error bodies are read up to this size; the rest is dropped
ERROR_BODY_LIMIT = 256 * 1024
#: non-stream upstream answers are read up to this size
RESPONSE_BODY_LIMIT = 64 * 1024 * 1024


@dataclass
class ClientRequest:
    """One client call, parsed once by the endpoint resource."""

    format: Format
    model: str
    body: dict[str, Any]
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    client_key: str | None = None
    action: str = "generate"  # or "count_tokens"
    #: Gemini `alt`: None/"sse" for SSE framing
    alt: str | None = None
    #: how the request got here, for usage: "local", or Amp's "mapped"
    route: str = "local"


class RouteError(Exception):
    """A failure to answer in the client's family shape with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: a body already in the client's shape (e.g. a translated upstream error)
        self.body = body
        self.headers = headers or {}
        self.code = code
        self.type = type


@dataclass
class JSONResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    #: filtered upstream headers, with `passthrough-headers: true`
    passthrough: list[tuple[bytes, list[bytes]]] = field(default_factory=list)


@dataclass
class StreamResult:
    """An upstream stream that answered 2xx; the relay reads it into the client."""

    response: Any  # IResponse, unbuffered
    translator: Any  # StreamTranslator
    client_format: Format
    alt: str | None
    #: called once by the relay when the stream ends: (usage, error_status or None)
    done: Callable[[Usage, int | None], None]
    #: filtered upstream headers, with `passthrough-headers: true`
    passthrough: list[tuple[bytes, list[bytes]]] = field(default_factory=list)


class BootstrapSink:
    """Holds an upstream stream's first bytes until the relay takes over.

    The `StreamReader` calls `on_data`/`on_end`; until `attach`, data is kept and `first`
    fires (True on data, False on an end before any data); afterwards everything goes
    straight to the relay.
    """

    def __init__(self) -> None:
        self.first: defer.Deferred[bool] = defer.Deferred()
        self.reader: Any = None
        self._buffer: list[bytes] = []
        self._ended: tuple[Any] | None = None
        self._target: Any = None

    def on_data(self, data: bytes) -> None:
        if self._target is not None:
            self._target.on_data(data)
            return
        self._buffer.append(data)
        if not self.first.called:
            self.first.callback(True)

    def on_end(self, reason: Any) -> None:
        if self._target is not None:
            self._target.on_end(reason)
            return
        self._ended = (reason,)
        if not self.first.called:
            self.first.callback(False)

    def attach(self, target: Any) -> None:
        """Hand the stream to `target` (with `on_data`/`on_end`), replaying what came."""
        self._target = target
        buffered, self._buffer = self._buffer, []
        for data in buffered:
            target.on_data(data)
        if self._ended is not None:
            target.on_end(self._ended[0])


@dataclass
class _Failure:
    status: int
    body: bytes
    retry_after: float | None
    request_invalid: bool


_INVALID_MARKERS = (b"invalid_request_error", b"INVALID_ARGUMENT", b"FAILED_PRECONDITION")
_UNSUPPORTED = re.compile(
    rb"model[^\"]{0,40}(not supported|not found|does not exist|unsupported)", re.I
)


def is_request_invalid(status: int, body: bytes) -> bool:
    """Errors that another credential would answer the same way (core.md §4.3)."""
    if status == 422:
        return True
    if status == 400:
        if _UNSUPPORTED.search(body):
            return False
        return any(m in body for m in _INVALID_MARKERS)
    if status == 404 and b"store" in body and b"not found" in body:
        return True
    return status == 500 and b'"status":"UNKNOWN"' in body.replace(b" ", b"")


def parse_retry_after(headers: Any, body: bytes, now: float) -> float | None:
    """Seconds from Retry-After (delta or HTTP date), or Gemini's RetryInfo retryDelay."""
    values = headers.getRawHeaders(b"retry-after") if headers is not None else None
    if values:
        raw = values[0].decode("latin-1").strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw).timestamp()
                return max(0.0, when - now)
            except (TypeError, ValueError):
                pass
    m = re.search(rb'"retryDelay"\s*:\s*"([0-9.]+)s"', body)
    if m:
        return float(m.group(1))
    return None


def passthrough_headers(headers: Any) -> list[tuple[bytes, list[bytes]]]:
    """Upstream headers a client may see; the answer's framing headers stay ours."""
    return [
        (name, values)
        for name, values in filter_response_headers(headers.getAllRawHeaders())
        if name.lower() not in (b"content-type", b"transfer-encoding", b"date", b"server")
    ]


def _thinking_caps(spec: Any) -> dict[str, Any] | None:
    """The catalog's thinking entry as the request translators take it (None: unchecked)."""
    if spec is None or getattr(spec, "user_defined", False):
        return None
    t = spec.thinking
    if t is None:
        return {}
    return {
        "min": t.min,
        "max": t.max,
        "levels": t.levels,
        "zero_allowed": t.zero_allowed,
        "dynamic_allowed": t.dynamic_allowed,
        "output": spec.output,
    }


class Router:
    """Serves `ClientRequest`s from the credentials in the registry."""

    def __init__(
        self,
        reactor: Any,
        config: Callable[[], Any],
        registry: Callable[[], ModelRegistry],
        pool: CredentialPool,
        http: Any,
        usage: UsageBook,
    ) -> None:
        self.reactor = reactor
        self._config = config
        self._registry = registry
        self.pool = pool
        self.http = http
        self.usage = usage

    # -- entry point -------------------------------------------------------------------

    async def handle(self, req: ClientRequest) -> JSONResult | StreamResult:
        config = self._config()
        try:
            resolution = self._registry().resolve(req.model)
        except UnknownModel as e:
            raise RouteError(404, e.message, code="model_not_found")
        except NoCredential as e:
            raise RouteError(503, e.message, code="auth_not_found", type="api_error")
        except SelectionError as e:
            raise RouteError(e.status, e.message, code=e.code)
        attempt = 0
        while True:
            try:
                ordered = self.pool.order(resolution.candidates, resolution.base_model)
            except AllCoolingDown as e:
                raise RouteError(
                    429,
                    e.message,
                    headers={"Retry-After": str(max(1, int(e.reset_seconds + 0.999)))},
                    code="model_cooldown",
                    type="rate_limit_error",
                )
            except NoCredential as e:
                raise RouteError(503, e.message, code="auth_not_found", type="api_error")
            last: _Failure | None = None
            tried = 0
            for cand in ordered:
                if config.max_retry_credentials and tried >= config.max_retry_credentials:
                    break
                tried += 1
                outcome = await self._attempt(req, cand, resolution)
                if not isinstance(outcome, _Failure):
                    return outcome
                last = outcome
                if outcome.request_invalid:
                    break
            assert last is not None
            delay = self.pool.retry_delay(
                resolution.candidates,
                attempt,
                request_retry=config.request_retry,
                max_retry_interval=config.max_retry_interval,
                last_status=last.status,
                retry_after=last.retry_after,
                request_invalid=last.request_invalid,
            )
            if delay is None:
                raise self._upstream_error(req, last)
            log.info(
                "all credentials failed for {model}; retry round {n} in {delay:.1f}s",
                model=req.model,
                n=attempt + 1,
                delay=delay,
            )
            await task.deferLater(self.reactor, delay, lambda: None)
            attempt += 1

    # -- one credential ------------------------------------------------------------------

    async def _attempt(self, req: ClientRequest, cand: Any, resolution: Any) -> Any:
        cred = cand.credential
        model = cand.upstream_model
        executor = executor_for(cred)
        provider_fmt: Format = executor.format
        # compact is a single JSON call even where generation always streams
        upstream_stream = req.stream or (executor.always_streams and req.action == "generate")
        try:
            if req.action == "count_tokens":
                local = self._count_locally(req, provider_fmt)
                if local is not None:
                    return local
                body = count_tokens_request(req.format, provider_fmt, req.body, model=model)
            else:
                caps = _thinking_caps(cand.spec)
                body = translate_request(
                    req.format,
                    provider_fmt,
                    req.body,
                    model=model,
                    stream=upstream_stream,
                    model_caps=caps,
                )
                body = apply_thinking(
                    provider_fmt, body, resolution.thinking_suffix, model_caps=caps
                )
        except TranslationError as e:
            raise RouteError(400, str(e), type="invalid_request_error")
        config = self._config()
        try:
            call = executor.build(
                cred,
                model=model,
                body=body,
                stream=upstream_stream,
                action=req.action,
                client_headers=req.headers,
                # upstream streams are always asked for SSE; the translator frames the
                # client's answer (a JSON array when its alt is not sse)
                alt=None,
            )
        except (UnsupportedAction, UpstreamConfigError) as e:
            log.warn(
                "credential {cred} cannot serve {model}: {error}",
                cred=cred.label,
                model=model,
                error=str(e),
            )
            return _Failure(501, str(e).encode(), None, False)
        proxy_url = cred.proxy_url or config.proxy_url
        try:
            response = await executor.send(
                self.http, call, proxy_url, config.upstream_timeouts.headers_seconds
            )
        except defer.CancelledError:
            self.pool.mark_cancelled(cred, model)
            raise
        except HeaderTimeout as e:
            log.warn("upstream {cred} did not answer {model} in time", cred=cred.label, model=model)
            return _Failure(504, str(e).encode(), None, False)
        except Exception as e:
            log.warn(
                "upstream {cred} unreachable for {model}: {error}",
                cred=cred.label,
                model=model,
                error=type(e).__name__,
            )
            self._record(req, cred, 502, req.stream)
            return _Failure(502, b"upstream unreachable: " + type(e).__name__.encode(), None, False)
        if response.code >= 400:
            try:
                raw = await read_body(response, ERROR_BODY_LIMIT)
            except defer.CancelledError:
                self.pool.mark_cancelled(cred, model)
                raise
            except Exception:
                raw = b""
            retry_after = parse_retry_after(response.headers, raw, self.reactor.seconds())
            invalid = is_request_invalid(response.code, raw)
            if not invalid:
                cooldown = self.pool.mark_failure(
                    cred,
                    model,
                    response.code,
                    retry_after,
                    model_unsupported=response.code in (400, 422)
                    and bool(_UNSUPPORTED.search(raw)),
                )
                log.info(
                    "upstream {cred} answered {status} for {model}; resting {cooldown:.0f}s",
                    cred=cred.label,
                    status=response.code,
                    model=model,
                    cooldown=cooldown or 0.0,
                )
            self._record(req, cred, response.code, req.stream)
            return _Failure(response.code, raw, retry_after, invalid)

        if req.stream and req.action == "generate":
            started = await self._bootstrap(response, config)
            if started is None:
                # nothing reached the client yet, so another credential can still serve it
                log.info(
                    "upstream {cred} closed the stream for {model} before sending anything",
                    cred=cred.label,
                    model=model,
                )
                return _Failure(
                    502, b"upstream closed the stream before sending anything", None, False
                )
            result: Any = self._stream_result(req, cred, model, provider_fmt, response)
            result.started = started
        else:
            result = await self._json_result(
                req, cred, model, provider_fmt, response, upstream_stream
            )
        if config.passthrough_headers:
            result.passthrough = passthrough_headers(response.headers)
        return result

    def _count_locally(self, req: ClientRequest, provider_fmt: Format) -> JSONResult | None:
        if provider_fmt in (Format.CLAUDE, Format.GEMINI):
            return None
        n = estimate_tokens(req.format, req.body)
        if req.format is Format.GEMINI:
            out: dict[str, Any] = {
                "totalTokens": n,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}],
            }
        else:
            out = {"input_tokens": n}
        return JSONResult(200, json.dumps(out).encode())

    async def _json_result(
        self,
        req: ClientRequest,
        cred: Any,
        model: str,
        provider_fmt: Format,
        response: Any,
        upstream_stream: bool,
    ) -> JSONResult:
        try:
            if upstream_stream:
                parsed = await self._aggregate(response, provider_fmt)
                raw = None
            else:
                raw = await read_body(response, RESPONSE_BODY_LIMIT)
                parsed = json.loads(raw)
        except defer.CancelledError:
            self.pool.mark_cancelled(cred, model)
            raise
        except AggregateError as e:
            # the upstream stream carried its own failure (e.g. Codex response.failed)
            self.pool.mark_failure(cred, model, e.status)
            raise RouteError(e.status, e.message)
        except Exception as e:
            log.warn("upstream {cred} sent an unreadable answer: {error}", cred=cred.label, error=e)
            raise RouteError(502, f"upstream sent an unreadable answer ({type(e).__name__})")
        self.pool.mark_success(cred, model)
        if req.action == "count_tokens":
            out = self._count_answer(req, provider_fmt, parsed, raw)
        elif provider_fmt == req.format and raw is not None:
            out = raw  # fast path: the upstream's own bytes
        else:
            names = client_tools(req.format, provider_fmt, req.body)
            out = json.dumps(
                translate_response(
                    provider_fmt, req.format, parsed, model=req.model, tool_names=names
                ),
                ensure_ascii=False,
            ).encode("utf-8")
        self._record(req, cred, 200, False, usage_from_response(provider_fmt.value, parsed))
        return JSONResult(200, out)

    def _count_answer(
        self, req: ClientRequest, provider_fmt: Format, parsed: Any, raw: bytes | None
    ) -> bytes:
        if provider_fmt == req.format and raw is not None:
            return raw
        n = 0
        if isinstance(parsed, dict):
            n = int(parsed.get("input_tokens") or parsed.get("totalTokens") or 0)
        if req.format is Format.GEMINI:
            return json.dumps(
                {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
            ).encode()
        return json.dumps({"input_tokens": n}).encode()

    async def _aggregate(self, response: Any, provider_fmt: Format) -> Any:
        """Read a whole upstream stream into the provider's non-stream answer (Codex)."""
        raw = await read_body(response, RESPONSE_BODY_LIMIT)
        decoder = SSEDecoder()
        agg = aggregate_stream(provider_fmt)
        for ev in decoder.feed(raw) + decoder.close():
            agg.feed(ev)
        return agg.result()

    async def _bootstrap(self, response: Any, config: Any) -> BootstrapSink | None:
        """Start reading the stream and wait for its first bytes (core.md §4.3, step 3).

        Returns the sink holding the reader and what has arrived, or None when the
        upstream ended or failed before sending anything.
        """
        sink = BootstrapSink()
        sink.reader = deliver_stream(
            response,
            sink.on_data,
            sink.on_end,
            idle_timeout=config.streaming.idle_timeout_seconds,
            clock=self.reactor,
        )
        try:
            got = await sink.first
        except defer.CancelledError:
            sink.reader.stop()
            raise
        return sink if got else None

    def _stream_result(
        self, req: ClientRequest, cred: Any, model: str, provider_fmt: Format, response: Any
    ) -> StreamResult:
        translator = stream_translator(
            provider_fmt,
            req.format,
            model=req.model,
            tool_names=client_tools(req.format, provider_fmt, req.body),
            gemini_sse=req.alt in (None, "sse"),
        )

        def done(usage: Usage, error: int | None) -> None:
            if error is None:
                self.pool.mark_success(cred, model)
            elif error == 499:
                self.pool.mark_cancelled(cred, model)
            self._record(req, cred, error or 200, True, usage)

        return StreamResult(response, translator, req.format, req.alt, done)

    def _record(
        self, req: ClientRequest, cred: Any, status: int, stream: bool, usage: Usage | None = None
    ) -> None:
        self.usage.record(
            model=req.model,
            provider=cred.provider,
            credential_id=cred.id,
            client_key=req.client_key,
            route=req.route,
            status=status,
            stream=stream,
            usage=usage,
        )

    # -- errors ------------------------------------------------------------------------------

    def _upstream_error(self, req: ClientRequest, failure: _Failure) -> RouteError:
        family = family_of(req.format)
        body = upstream_error_object(family, failure.status, failure.body)
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(failure.retry_after + 0.999)))
        return RouteError(failure.status, "upstream error", body=body, headers=headers)
