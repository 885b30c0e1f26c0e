# -*- test-case-name: tests.amp.test_fallback -*-
"""`AmpFallback`: who serves an Amp model call.

Default order: a local provider for the requested model -> a configured mapping whose
target has a local provider -> the Amp upstream (spends Amp credits) -> the local
endpoint's own error. `force-model-mappings` tries the mapping first. With
`fallback: deny` the upstream step is replaced by an error that names the mapping to add.

Local answers go through the same endpoint resources as `/v1` (subclassed here only to
rewrite what they send: see `rewriter.py`) after the body is sanitised and the
1M-context beta flag is dropped. Each decision is logged and counted per model.

The body is parsed once (`read_amp_body`: the model, the sanitiser). Bodies of at least
`limits.large-body-size` are parsed, sanitised and, for a mapping, re-encoded on the
`LargeBodies` worker threads (`cliproxy.routing.offload`), and the decision is taken,
counted and logged on the reactor in between; a full queue gets a 503 in the client's shape.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.amp.rewriter import ResponseRewriter, RewritingTranslator, request_tool_names
from cliproxy.amp.sanitize import CONTEXT_1M_BETA, filter_beta_features, sanitize_messages
from cliproxy.amp.stats import (
    AMP_CREDITS,
    DENIED,
    LOCAL_PROVIDER,
    MODEL_MAPPING,
    NO_PROVIDER,
    ROUTE_OF,
    AmpStats,
    UsageTap,
    usage_in,
)
from cliproxy.amp.upstream import read_content
from cliproxy.formats import Family
from cliproxy.registry import split_thinking_suffix
from cliproxy.routing import JSONResult, StreamResult
from cliproxy.routing.offload import BUSY_RETRY_SECONDS, Busy
from cliproxy.upstream.base import json_bytes
from cliproxy.upstream.body import BodyDecodeError, BodyTooLarge, Decompressor, declared_encoding
from cliproxy.usage import Usage
from cliproxy.web.endpoints import AnswerFilter, GeminiModel, IAnswerFilter
from cliproxy.web.errors import error_response, family_for_path
from cliproxy.web.jsonbody import (
    MAX_JSON_DEPTH,
    PIECEWISE_BYTES,
    BodyError,
    json_depth,
    load_json_body,
    too_deep_message,
)
from cliproxy.web.state import client_gone, state_of

log = Logger()


class AmpAnswers(AnswerFilter):
    """Set on a request Amp serves locally: rewrites what the endpoint answers (model name
    back to the one Amp asked for, tool names) and counts it on the Amp route."""

    def __init__(self, rewriter: ResponseRewriter, route: str, stats: AmpStats) -> None:
        self.rewriter = rewriter
        self.route = route
        self.stats = stats

    def json(self, body: bytes) -> bytes:
        return self.rewriter.rewrite_body(body, "application/json")

    def stream(self, result: StreamResult) -> StreamResult:
        result.translator = RewritingTranslator(result.translator, self.rewriter)
        inner_done = result.done
        stats, route = self.stats, self.route

        def done(usage: Usage, error: int | None) -> None:
            stats.finished(route, error or 200, usage)
            inner_done(usage, error)

        result.done = done
        return result

    def answered(self, result: JSONResult) -> None:
        usage = Usage()
        try:
            usage_in(json.loads(result.body), usage)
        except (ValueError, UnicodeDecodeError):
            pass
        self.stats.finished(self.route, result.status, usage)

    def failed(self, status: int) -> None:
        self.stats.finished(self.route, status, None)


def decode_request_body(request: Request, limit: int) -> bytes:
    """The request body with its `Content-Encoding` undone (Amp gzips large bodies).

    Raises:
        BodyDecodeError, BodyTooLarge: the body does not decode within `limit`.
    """
    raw = read_content(request)
    encoding = declared_encoding(request.requestHeaders)
    if not encoding or not raw:
        return raw
    d = Decompressor(encoding, limit)
    out = d.feed(raw) + d.flush()
    request.requestHeaders.removeHeader(b"content-encoding")
    return out


def mapping_hint(model: str) -> str:
    base, _ = split_thinking_suffix(model)
    return f'ampcode: {{model-mappings: [{{from: "{base}", to: "<a model you have locally>"}}]}}'


@dataclass
class AmpBody:
    """A model call's body as the fallback reads it.

    Attributes:
        raw: the bytes the endpoint or the Amp upstream gets (sanitised, model mapped).
        body: the parsed body (None: empty or not JSON; the endpoint answers that).
        too_deep: the body nests deeper than the documented limit (a 400).
    """

    raw: bytes
    body: Any
    too_deep: bool = False

    def requested(self) -> str | None:
        """The `model` member, stripped; None when there is none."""
        body = self.body
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return body["model"].strip() or None
        return None


def read_amp_body(raw: bytes) -> AmpBody:
    """Parse `raw` once and apply the sanitiser's rules (`sanitize.py`); the bytes are
    re-encoded only when something changed.

    Pure (no Twisted, no logging): large bodies are read on a `LargeBodies` worker thread,
    decoded a piece at a time so the reactor keeps its GIL turns.
    """
    if not raw.strip():
        return AmpBody(raw, None)
    if len(raw) < PIECEWISE_BYTES and json_depth(raw) > MAX_JSON_DEPTH:
        # whole-body parsers may stop short of their own recursion error (large bodies are
        # parsed in pieces, which raise it, and their depth is checked once parsed)
        return AmpBody(raw, None, too_deep=True)
    try:
        body = load_json_body(raw)
    except BodyError as e:
        return AmpBody(raw, None, too_deep=str(e) == too_deep_message())
    if isinstance(body, dict) and sanitize_messages(body):
        raw = json_bytes(body)
    return AmpBody(raw, body)


def with_model(body: dict[str, Any], model: str) -> bytes:
    """`body` (changed in place) asking for `model`, encoded (pure: runs on a worker for
    large bodies)."""
    body["model"] = model
    return json_bytes(body)


def _write_late(request: Request, answer: bytes) -> None:
    """An answer produced after `render` returned NOT_DONE_YET."""
    if client_gone(request) or request.finished:
        return
    request.write(answer)
    request.finish()


def _late_failure(failure: Failure, request: Request) -> None:
    log.failure("while serving an amp model call", failure)
    if client_gone(request) or request.finished:
        return
    if request.startedWriting:
        request.loseConnection()
        return
    family = family_for_path(request.path)
    _write_late(request, error_response(request, family, 500, "internal error in cliproxy"))


#: decision -> (log level, line); each line names what happens, and what to add where useful
_DECISION_LINES = {
    LOCAL_PROVIDER: (
        LogLevel.info,
        "amp route {route_type}: {model} served by local provider {provider} ({path})",
    ),
    MODEL_MAPPING: (
        LogLevel.info,
        "amp route {route_type}: {model} -> {target} on local provider {provider} ({path})",
    ),
    AMP_CREDITS: (
        LogLevel.warn,
        "amp route {route_type}: forwarding {model} to the Amp upstream (uses Amp "
        "credits); to serve it locally add to config: {hint}",
    ),
    DENIED: (
        LogLevel.warn,
        "amp route {route_type}: {model} has no local provider or mapping and "
        "ampcode.fallback is deny; add: {hint}",
    ),
}
_NO_ROUTE = (
    LogLevel.warn,
    "amp route {route_type}: no local provider, mapping or Amp upstream for {model}",
)


def _announce(decision: str, requested: str, model: str, provider: str, raw_path: bytes) -> None:
    """One log line per decision."""
    level, line = _DECISION_LINES.get(decision, _NO_ROUTE)
    log.emit(
        level,
        line,
        route_type=decision,
        model=requested,
        target=model,
        provider=provider,
        path=raw_path.decode("latin-1", "replace"),
        hint=mapping_hint(requested),
    )


def _denied(request: Request, family: Family, requested: str) -> bytes:
    return error_response(
        request,
        family,
        403,
        f"model '{requested}' has no local provider and no model mapping, and "
        "ampcode.fallback is 'deny', so it was not sent to Amp (no credits spent). "
        f"Map it to a model you have in config.yaml: {mapping_hint(requested)}",
        code="amp_fallback_denied",
        type="permission_error" if family is Family.CLAUDE else "invalid_request_error",
    )


class AmpFallback:
    """Runs one model call on the route the decision picks."""

    def __init__(self, module: Any) -> None:
        self.module = module

    # -- decision ------------------------------------------------------------------------

    def decide(self, requested: str) -> tuple[str, str, str]:
        """(decision, model to run, provider) for `requested`.

        decision is LOCAL_PROVIDER, MODEL_MAPPING, AMP_CREDITS, DENIED or NO_PROVIDER.
        """
        module = self.module
        settings = module.settings
        mapper = module.mapper
        if settings.force_model_mappings:
            target = mapper.map(requested)
            if target:
                return MODEL_MAPPING, target, module.provider_of(target)
            provider = module.provider_of(requested)
            if provider:
                return LOCAL_PROVIDER, requested, provider
        else:
            provider = module.provider_of(requested)
            if provider:
                return LOCAL_PROVIDER, requested, provider
            target = mapper.map(requested)
            if target:
                return MODEL_MAPPING, target, module.provider_of(target)
        if settings.fallback == "deny":
            return DENIED, requested, ""
        if module.upstream_url:
            return AMP_CREDITS, requested, ""
        return NO_PROVIDER, requested, ""

    # -- serving -------------------------------------------------------------------------

    def serve(
        self,
        request: Request,
        endpoint: IResource | None,
        gemini: tuple[str, str] | None = None,
    ) -> bytes | int:
        """Serve a POST model call with `endpoint` (the `/v1` endpoint Resource for the
        call), or, when `gemini` is given, a Gemini call for its (model, method)."""
        module = self.module
        family = family_for_path(request.path)
        try:
            raw = decode_request_body(request, module.core.config.limits.max_body_bytes)
        except (BodyDecodeError, BodyTooLarge) as e:
            return error_response(request, family, 400, f"request body does not decode: {e}")
        bodies = module.core.backend.router.bodies
        if bodies.offloads(len(raw)):
            # parsed, sanitised and (if mapped) re-encoded on a worker thread
            d = defer.ensureDeferred(self._serve_large(request, endpoint, gemini, raw))
            request.notifyFinish().addErrback(lambda _: d.cancel())
            d.addErrback(_late_failure, request)
            return NOT_DONE_YET
        amp_body = read_amp_body(raw)
        if amp_body.too_deep:
            return error_response(request, family, 400, too_deep_message())
        requested, decision, model, provider = self._decided(request, amp_body, gemini)
        if decision == MODEL_MAPPING and isinstance(amp_body.body, dict):
            if "model" in amp_body.body:
                amp_body.raw = with_model(amp_body.body, model)
        return self._serve_decided(
            request, endpoint, gemini, amp_body, requested, decision, model, provider
        )

    async def _serve_large(
        self,
        request: Request,
        endpoint: IResource | None,
        gemini: tuple[str, str] | None,
        raw: bytes,
    ) -> None:
        """`serve` for a large body: the parse (and a mapping's re-encoding) on a worker."""
        module = self.module
        family = family_for_path(request.path)
        bodies = module.core.backend.router.bodies
        size = len(raw)
        decision = ""
        try:
            amp_body = await bodies.call(size, read_amp_body, raw)
            if client_gone(request):
                return
            if amp_body.too_deep:
                _write_late(request, error_response(request, family, 400, too_deep_message()))
                return
            requested, decision, model, provider = self._decided(request, amp_body, gemini)
            if decision == MODEL_MAPPING and isinstance(amp_body.body, dict):
                if "model" in amp_body.body:
                    amp_body.raw = await bodies.call(size, with_model, amp_body.body, model)
        except defer.CancelledError:
            return  # the client left while its body waited or was read
        except Busy as e:
            if decision in ROUTE_OF:
                module.stats.finished(ROUTE_OF[decision], 503, None)
            request.setHeader(b"retry-after", b"%d" % BUSY_RETRY_SECONDS)
            _write_late(request, error_response(request, family, 503, str(e)))
            return
        if client_gone(request):
            return
        answer = self._serve_decided(
            request, endpoint, gemini, amp_body, requested, decision, model, provider
        )
        if answer is not NOT_DONE_YET:
            assert isinstance(answer, bytes)
            _write_late(request, answer)

    def _decided(
        self, request: Request, amp_body: AmpBody, gemini: tuple[str, str] | None
    ) -> tuple[str | None, str, str, str]:
        """(requested model, decision, model to run, provider), counted and logged."""
        requested = amp_body.requested()
        if requested is None and gemini is not None:
            requested = gemini[0] or None
        if requested is None:
            return None, NO_PROVIDER, "", ""
        decision, model, provider = self.decide(requested)
        self.module.stats.decided(decision, requested)
        _announce(decision, requested, model, provider, request.path)
        return requested, decision, model, provider

    def _serve_decided(
        self,
        request: Request,
        endpoint: IResource | None,
        gemini: tuple[str, str] | None,
        amp_body: AmpBody,
        requested: str | None,
        decision: str,
        model: str,
        provider: str,
    ) -> bytes | int:
        module = self.module
        body = amp_body.body
        request.content = io.BytesIO(amp_body.raw)
        if requested is None:
            # nothing to route on: the endpoint answers (a 400 naming the problem)
            return self._local(request, endpoint, gemini, body, "", "", False, NO_PROVIDER)
        if decision == LOCAL_PROVIDER:
            suppress = provider != "claude"
            return self._local(request, endpoint, gemini, body, requested, "", suppress, decision)
        if decision == MODEL_MAPPING:
            return self._local(request, endpoint, gemini, body, requested, model, True, decision)
        if decision == AMP_CREDITS:
            return self._upstream(request, requested, body)
        if decision == DENIED:
            module.stats.finished(ROUTE_OF[DENIED], 403, None)
            return _denied(request, family_for_path(request.path), requested)
        return self._local(request, endpoint, gemini, body, requested, "", False, decision)

    def _local(
        self,
        request: Request,
        endpoint: IResource | None,
        gemini: tuple[str, str] | None,
        body: Any,
        original: str,
        mapped: str,
        suppress: bool,
        decision: str,
    ) -> bytes | int:
        module = self.module
        beta = request.getHeader(b"anthropic-beta")
        if beta is not None:
            kept = filter_beta_features(beta.decode("latin-1"), CONTEXT_1M_BETA)
            if kept:
                request.requestHeaders.setRawHeaders(b"anthropic-beta", [kept.encode("latin-1")])
            else:
                request.requestHeaders.removeHeader(b"anthropic-beta")
        rewriter = ResponseRewriter(original, request_tool_names(body), suppress)
        request.setComponent(IAnswerFilter, AmpAnswers(rewriter, ROUTE_OF[decision], module.stats))
        resource: IResource
        if gemini is not None:
            model, method = gemini
            resource = GeminiModel(module.core.backend, target=(mapped or model, method))
        else:
            assert endpoint is not None
            resource = endpoint
        result: bytes | int = resource.render(request)
        return result

    def _upstream(self, request: Request, model: str, body: Any) -> bytes | int:
        module = self.module
        stream = bool(isinstance(body, dict) and body.get("stream") is True)
        client_key = state_of(request).client_key

        def ended(status: int, usage: Usage) -> None:
            module.stats.finished("amp-upstream", status, usage)
            module.core.usage.record(
                model=model,
                provider="amp",
                credential_id="amp-upstream",
                client_key=client_key,
                status=status,
                stream=stream,
                usage=usage,
                route="amp-upstream",
            )

        result: bytes | int = module.proxy.proxy(request, UsageTap(ended))
        return result
