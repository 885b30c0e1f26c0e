# -*- test-case-name: tests.web.test_surface -*-
"""The Resource tree's building blocks: JSON containers, the API base class, small pages."""

from __future__ import annotations

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from cliproxy import __version__
from cliproxy.formats import Family
from cliproxy.web.errors import error_response, family_for_path, json_response
from cliproxy.web.origin import cors_headers
from cliproxy.web.state import state_of

ENDPOINTS = [
    "GET /healthz",
    "GET /v1/models",
    "POST /v1/chat/completions",
    "POST /v1/completions",
    "POST /v1/responses",
    "GET /v1/responses (WebSocket)",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
    "GET /v1beta/models",
    "POST /v1beta/models/{model}:generateContent",
    "POST /v1beta/models/{model}:streamGenerateContent",
    "POST /v1beta/models/{model}:countTokens",
]


def add_cors(request: Request) -> None:
    """CORS headers for a cross origin that `cors.allow-origins` allows (none otherwise).

    Which origin is allowed was decided from the headers (`cliproxy.web.admission`);
    other origins never get this far.
    """
    origin = state_of(request).cors_origin
    if origin is not None:
        for name, value in cors_headers(origin, preflight=request.method == b"OPTIONS"):
            request.setHeader(name, value)


class Node(Resource):
    """Base of cliproxy's resources: `Resource` with a typed constructor."""

    def __init__(self) -> None:
        Resource.__init__(self)


class NotFound(Node):
    """404 as JSON in the family the path suggests."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        family = family_for_path(request.path)
        path = request.path.decode("latin-1", "replace")
        return error_response(
            request,
            family,
            404,
            f"no route for {request.method.decode('latin-1')} {path}; GET / lists the endpoints",
            code="unknown_url",
        )


class Container(Node):
    """A path segment holding named children; anything else is a JSON 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return NotFound()

    def render(self, request: Request) -> bytes:
        return NotFound().render(request)


class Preflight(Node):
    """CORS preflight: answered 204 at once (with CORS headers for an allowed origin)."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        add_cors(request)
        request.setResponseCode(204)
        return b""


class OwnPreflight(Node):
    """Base for subtrees that answer OPTIONS themselves (Amp's account routes refuse
    preflights) instead of the root's blanket 204."""


class Root(Container):
    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        child = self.children.get(path)
        if request.method == b"OPTIONS" and not isinstance(child, OwnPreflight):
            return Preflight()
        child = Resource.getChildWithDefault(self, path, request)
        assert IResource.providedBy(child)
        return child

    def render(self, request: Request) -> bytes:
        if request.method == b"OPTIONS":
            return Preflight().render(request)
        return NotFound().render(request)


def method_not_allowed(resource: object, request: Request, family: Family) -> bytes:
    method = request.method.decode("latin-1")
    allowed = allowed_methods(resource)
    request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
    return error_response(
        request, family, 405, f"method {method} not allowed here; use {', '.join(allowed)}"
    )


class JsonLeaf(Node):
    """A leaf whose unsupported methods get a JSON 405, not Twisted's HTML page."""

    isLeaf = True

    def render(self, request: Request) -> bytes | int:
        if not _handles(self, request.method.decode("latin-1")):
            return method_not_allowed(self, request, family_for_path(request.path))
        result: bytes | int = Resource.render(self, request)
        return result


class Health(JsonLeaf):
    def render_GET(self, request: Request) -> bytes:
        return json_response(request, 200, {"status": "ok"})

    render_HEAD = render_GET


class Index(JsonLeaf):
    def render_GET(self, request: Request) -> bytes:
        return json_response(
            request,
            200,
            {
                "name": "cliproxy",
                "message": "CLI Proxy API Server",
                "version": __version__,
                "endpoints": ENDPOINTS,
            },
        )

    render_HEAD = render_GET


def allowed_methods(resource: object) -> list[str]:
    """The methods `resource` has a `render_<METHOD>` for."""
    names = {n[7:] for n in dir(resource) if n.startswith("render_") and n[7:].isupper()}
    if "GET" not in names:
        names.discard("HEAD")  # Resource.render_HEAD only calls render_GET
    return sorted(names)


def _handles(resource: object, method: str) -> bool:
    """Cheap per-request form of `method in allowed_methods(resource)`."""
    if getattr(resource, "render_" + method, None) is None:
        return False
    return method != "HEAD" or getattr(resource, "render_GET", None) is not None


class ApiResource(Node):
    """Base for API endpoints: CORS and JSON errors in `family`'s shape.

    Subclasses implement `render_GET`/`render_POST`. The client-key check is not here: the
    tree wraps each endpoint in `cliproxy.web.guard.KeyGuard`.
    """

    isLeaf = True
    family = Family.OPENAI

    def family_for(self, request: Request) -> Family:
        return self.family

    def render(self, request: Request) -> bytes | int:
        add_cors(request)
        method = request.method.decode("latin-1")
        if not _handles(self, method):
            return method_not_allowed(self, request, self.family_for(request))
        result: bytes | int = getattr(self, "render_" + method)(request)
        return result


def body_size(request: Request) -> int:
    """The size of the body Twisted buffered (a file past 100 kB), without reading it."""
    if request.content is None:
        return 0
    size: int = request.content.seek(0, 2)
    return size


def raw_body(request: Request) -> bytes:
    """The whole request body as Twisted buffered it."""
    if request.content is None:
        return b""
    request.content.seek(0)
    raw: bytes = request.content.read()
    return raw
