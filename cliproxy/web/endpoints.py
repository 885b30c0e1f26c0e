# -*- test-case-name: tests.test_serving -*-
"""Inference endpoints, one Resource per client API family.

Each parses the body once, checks the fields routing needs (a 400 in the client's
shape otherwise, before any upstream call), and hands a `ClientRequest` to the router.
The render returns NOT_DONE_YET and ties the client's departure to cancelling the work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import Interface, implementer

from cliproxy.config import Config
from cliproxy.formats import Family, Format, family_of
from cliproxy.formats.completions import (
    CompletionsStream,
    chat_to_completion,
    completion_to_chat_request,
)
from cliproxy.formats.errors import error_body, error_object
from cliproxy.formats.json_types import JSONObject
from cliproxy.routing import ClientRequest, JSONResult, RouteError, Router, StreamResult
from cliproxy.routing.keepalive import NonStreamKeepAlive
from cliproxy.routing.offload import BUSY_RETRY_SECONDS, Busy
from cliproxy.upstream.headers import CLIENT_CREDENTIAL_HEADERS, HOP_BY_HOP
from cliproxy.web.errors import error_response, json_bytes
from cliproxy.web.jsonbody import (
    BodyError,
    load_json_object,
    read_json_object,
    too_deep_message,
)
from cliproxy.web.relay import relay_stream
from cliproxy.web.resources import ApiResource, NotFound, body_size, raw_body
from cliproxy.web.state import client_gone, state_of

log = Logger()


@dataclass(frozen=True)
class Backend:
    """What the inference endpoints need: the router, the live config and the clock."""

    router: Router
    config: Callable[[], Config]
    reactor: IReactorTime


class IAnswerFilter(Interface):
    """A request component that sees, and may rewrite, what an endpoint answers.

    Amp's fallback sets one on the requests it serves locally (model names rewritten back,
    per-route counts); requests without one are answered as they are.
    """


@implementer(IAnswerFilter)
class AnswerFilter:
    """The filter that changes nothing; subclasses override what they need."""

    #: how the request got here, for usage records ("local", or an Amp route)
    route = "local"

    def json(self, body: bytes) -> bytes:
        return body

    def stream(self, result: StreamResult) -> StreamResult:
        return result

    def answered(self, result: JSONResult) -> None:
        """A whole JSON answer is about to be written."""

    def failed(self, status: int) -> None:
        """The call failed with `status` (499: the client left)."""


_NO_FILTER = AnswerFilter()


def answer_filter(request: Request) -> AnswerFilter:
    found = request.getComponent(IAnswerFilter)
    return found if isinstance(found, AnswerFilter) else _NO_FILTER


class BadRequest(Exception):
    pass


def client_headers(request: Request) -> dict[str, str]:
    """The client's headers (lower-cased names, first values) that executors, payload rules
    and session affinity may read: never its credentials, nor hop-by-hop ones."""
    out: dict[str, str] = {}
    for raw_name, values in request.requestHeaders.getAllRawHeaders():
        name = raw_name.decode("latin-1").lower()
        if values and name not in CLIENT_CREDENTIAL_HEADERS and name not in HOP_BY_HOP:
            out.setdefault(name, values[0].decode("latin-1"))
    return out


def _require_model(body: JSONObject) -> str:
    model = body.get("model")
    if model is None:
        raise BadRequest("'model' is required; GET /v1/models lists the available ones")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a non-empty string")
    return model.strip()


def _require_messages(body: JSONObject) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a list of message objects")
    if not all(isinstance(m, dict) for m in messages):
        raise BadRequest("every item of 'messages' must be an object")


def _write_json(
    request: Request,
    status: int,
    body: bytes,
    headers: dict[str, str],
    passthrough: Sequence[tuple[bytes, list[bytes]]] = (),
) -> None:
    if request.startedWriting:  # keep-alive newlines went out: the 200 and headers stand
        request.write(body)
        request.finish()
        return
    request.setResponseCode(status)
    for name, values in passthrough:
        request.responseHeaders.setRawHeaders(name, values)
    for k, v in headers.items():
        request.setHeader(k, v)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def _write_error(request: Request, body: bytes) -> None:
    """An error `error_response` set up, written after the render returned."""
    if client_gone(request) or request.finished:
        return
    request.write(body)
    request.finish()


def _stream_flag(body: JSONObject) -> bool:
    value = body.get("stream")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest("'stream' must be true or false")
    return value


def _last_resort(failure: Failure, request: Request) -> None:
    """Writing the answer itself failed: log it and end the request so nothing hangs."""
    log.failure("while answering a request", failure)
    if client_gone(request) or request.finished:
        return
    if request.startedWriting:
        request.loseConnection()
        return
    body = error_body(Family.OPENAI, 500, "internal error in cliproxy; see its log")
    _write_json(request, 500, body, {})


class InferenceResource(ApiResource):
    """Base: JSON in, router, JSON or SSE out."""

    format = Format.OPENAI_CHAT
    action = "generate"

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    @property
    def family(self) -> Family:  # type: ignore[override]
        return family_of(self.format)

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        raise NotImplementedError

    def getChild(self, path: bytes, request: Request) -> IResource:
        return NotFound()

    def render_POST(self, request: Request) -> bytes | int:
        size = body_size(request)
        if request.content is not None and self.backend.router.bodies.offloads(size):
            # read and parsed on a worker thread; the reactor keeps serving other streams
            d = defer.ensureDeferred(self._large(request, request.content, size))
            request.notifyFinish().addErrback(lambda _: d.cancel())
            d.addErrback(_last_resort, request)
            return NOT_DONE_YET
        try:
            body = load_json_object(raw_body(request))
        except BodyError as e:
            return error_response(request, self.family_for(request), 400, str(e))
        return self._route(request, body, size)

    async def _large(self, request: Request, content: IO[bytes], size: int) -> None:
        """A large body: read and parsed off the reactor, then routed as any other."""
        family = self.family_for(request)
        try:
            body = await self.backend.router.bodies.call(size, read_json_object, content)
        except defer.CancelledError:
            return  # the client left while its body waited or was parsed
        except BodyError as e:
            _write_error(request, error_response(request, family, 400, str(e)))
            return
        except Busy as e:
            request.setHeader(b"retry-after", b"%d" % BUSY_RETRY_SECONDS)
            _write_error(request, error_response(request, family, 503, str(e)))
            return
        if client_gone(request):
            return
        answer = self._route(request, body, size)
        if answer is not NOT_DONE_YET:
            assert isinstance(answer, bytes)
            _write_error(request, answer)

    def _route(self, request: Request, body: JSONObject, size: int) -> bytes | int:
        try:
            creq = self.parse(request, body)
        except BadRequest as e:
            return error_response(request, self.family_for(request), 400, str(e))
        state = state_of(request)
        creq.client_key = state.client_key
        creq.headers = client_headers(request)
        creq.route = answer_filter(request).route
        creq.transcript = state.upstream  # for the request log
        creq.size = size
        state.log_fields["model"] = creq.model
        d = defer.ensureDeferred(self.backend.router.handle(creq))
        interval = self.backend.config().nonstream_keepalive_interval
        if interval > 0 and not creq.stream and creq.action == "generate" and not d.called:
            request.setHeader(b"content-type", b"application/json")
            d.addBoth(NonStreamKeepAlive(self.backend.reactor, request.write, interval).stop)
        request.notifyFinish().addErrback(lambda _: d.cancel())
        d.addCallback(self.answer, request, creq)
        d.addErrback(self.fail, request, creq)
        d.addErrback(_last_resort, request)
        return NOT_DONE_YET

    # -- answers ---------------------------------------------------------------------------

    def answer(
        self, result: JSONResult | StreamResult, request: Request, creq: ClientRequest
    ) -> None:
        if client_gone(request):
            return
        filt = answer_filter(request)
        if isinstance(result, StreamResult):
            stream = filt.stream(self.wrap_stream(result))
            relay_stream(request, stream, self.backend.reactor, self.backend.config())
            return
        filt.answered(result)
        body = filt.json(self.wrap_json(result.body))
        _write_json(request, result.status, body, result.headers, result.passthrough)

    def wrap_json(self, body: bytes) -> bytes:
        return body

    def wrap_stream(self, result: StreamResult) -> StreamResult:
        return result

    def fail(self, failure: Failure, request: Request, creq: ClientRequest) -> None:
        filt = answer_filter(request)
        if failure.check(defer.CancelledError) or client_gone(request):
            filt.failed(499)
            return
        family = self.family_for(request)
        if failure.check(RouteError):
            e = failure.value
            assert isinstance(e, RouteError)
            status = e.status
            obj = e.body or error_object(family, status, e.message, type=e.type, code=e.code)
            headers = e.headers
            log.info(
                "request for {model} failed: {status} {why}",
                model=creq.model,
                status=status,
                why=e.log_reason(),
            )
        elif failure.check(RecursionError):
            status, headers = 400, {}
            obj = error_object(family, 400, too_deep_message())
        else:
            log.failure("unexpected error serving {model}", failure, model=creq.model)
            status, headers = 500, {}
            obj = error_object(family, 500, "internal error in cliproxy; see its log")
        filt.failed(status)
        _write_json(request, status, json_bytes(obj), headers)


class ChatCompletions(InferenceResource):
    """POST /v1/chat/completions (OpenAI Chat Completions)."""

    format = Format.OPENAI_CHAT

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model = _require_model(body)
        _require_messages(body)
        return ClientRequest(self.format, model, body, _stream_flag(body))


class Completions(InferenceResource):
    """POST /v1/completions: legacy completions, served as a one-message chat."""

    format = Format.OPENAI_CHAT

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model = _require_model(body)
        prompt = body.get("prompt", "Complete this:")
        if not isinstance(prompt, (str, list)):
            raise BadRequest("'prompt' must be a string or a list of strings")
        chat = completion_to_chat_request(body)
        return ClientRequest(self.format, model, chat, _stream_flag(body))

    def wrap_json(self, body: bytes) -> bytes:
        try:
            return json_bytes(chat_to_completion(json.loads(body)))
        except ValueError:
            return body

    def wrap_stream(self, result: StreamResult) -> StreamResult:
        result.translator = CompletionsStream(result.translator)
        return result


class Responses(InferenceResource):
    """POST /v1/responses (OpenAI Responses)."""

    format = Format.OPENAI_RESPONSES

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model = _require_model(body)
        items = body.get("input")
        if items is not None and not isinstance(items, (str, list)):
            raise BadRequest("'input' must be a string or a list of input items")
        if request.postpath == [b"compact"]:  # POST /v1/responses/compact: one JSON answer
            return ClientRequest(self.format, model, body, False, action="compact")
        return ClientRequest(self.format, model, body, _stream_flag(body))


class Messages(InferenceResource):
    """POST /v1/messages (Anthropic Messages)."""

    format = Format.CLAUDE

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model = _require_model(body)
        _require_messages(body)
        return ClientRequest(self.format, model, body, _stream_flag(body))


class CountTokens(InferenceResource):
    """POST /v1/messages/count_tokens."""

    format = Format.CLAUDE

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model = _require_model(body)
        _require_messages(body)
        return ClientRequest(self.format, model, body, False, action="count_tokens")


GEMINI_METHODS = {"generateContent", "streamGenerateContent", "countTokens"}


class GeminiModel(InferenceResource):
    """POST .../models/{model}:{method}; the model and method come from the path.

    A leaf: it is reached with `model:method` as the last segment it was found by (and
    any further segments, for model names with a `/`), or with a fixed target (Amp's
    Google bridge, and Amp's model mappings, which replace the model).
    """

    format = Format.GEMINI

    def __init__(self, backend: Backend, target: tuple[str, str] | None = None) -> None:
        super().__init__(backend)
        self.target = target

    def model_and_method(self, request: Request) -> tuple[str, str]:
        if self.target is not None:
            return self.target
        segments = [*(request.prepath or [])[-1:], *(request.postpath or [])]
        action = b"/".join(segments).decode("utf-8", "replace")
        model, _, method = action.rpartition(":")
        return model, method

    def parse(self, request: Request, body: JSONObject) -> ClientRequest:
        model, method = self.model_and_method(request)
        if method not in GEMINI_METHODS:
            raise BadRequest(
                f"unknown method '{method}'; use one of {', '.join(sorted(GEMINI_METHODS))}"
            )
        if not model:
            raise BadRequest("the model is missing from the path: /v1beta/models/{model}:{method}")
        contents = body.get("contents")
        if contents is not None and not isinstance(contents, list):
            raise BadRequest("'contents' must be a list of Content objects")
        alt = None
        for name in (b"alt", b"$alt"):
            values = (request.args or {}).get(name)
            if values:
                alt = values[0].decode("latin-1")
        if method == "countTokens":
            return ClientRequest(self.format, model, body, False, action="count_tokens")
        stream = method == "streamGenerateContent"
        return ClientRequest(self.format, model, body, stream, alt=alt)
