# -*- test-case-name: tests.web.test_surface -*-
"""Model listings: `/v1/models` (OpenAI shape; Claude shape for claude-cli), `/v1beta/models`.

`.../models/{model}:{method}` below either listing is a Gemini model call: `getChild`
hands that segment to the `GeminiModel` endpoint.
"""

from __future__ import annotations

from typing import Protocol

from twisted.web.resource import IResource
from twisted.web.server import Request

from cliproxy.formats import Family
from cliproxy.registry import GeminiModel as GeminiModelInfoDict
from cliproxy.registry import ModelList
from cliproxy.web.endpoints import Backend, GeminiModel
from cliproxy.web.errors import error_response, json_response
from cliproxy.web.resources import ApiResource, NotFound


class ModelLists(Protocol):
    """Where the listings come from (`cliproxy.catalog.Catalog`)."""

    def model_list(self, family: Family) -> ModelList: ...

    def gemini_model(self, model_id: str) -> GeminiModelInfoDict | None: ...


class _Listing(ApiResource):
    isLeaf = False

    def __init__(self, catalog: ModelLists, backend: Backend) -> None:
        super().__init__()
        self.catalog = catalog
        self.backend = backend

    def getChild(self, path: bytes, request: Request) -> IResource:
        if b":" in path and request.method == b"POST":
            return GeminiModel(self.backend)
        return self.model_child(path, request)

    def model_child(self, path: bytes, request: Request) -> IResource:
        return NotFound()


class OpenAIModels(_Listing):
    """GET /v1/models. Claude Code (User-Agent claude-cli/...) gets Anthropic's shape.

    Gemini's API answers on /v1/models/{model}:{method} as well as under /v1beta
    (google-genai picks the version).
    """

    family = Family.OPENAI

    def render_GET(self, request: Request) -> bytes:
        ua = (request.getHeader(b"user-agent") or b"").lower()
        if ua.startswith(b"claude-cli"):
            return json_response(request, 200, self.catalog.model_list(Family.CLAUDE))
        return json_response(request, 200, self.catalog.model_list(Family.OPENAI))

    render_HEAD = render_GET


class GeminiModels(_Listing):
    """GET /v1beta/models, GET /v1beta/models/{model}, POST .../{model}:{method}."""

    family = Family.GEMINI

    def render_GET(self, request: Request) -> bytes:
        return json_response(request, 200, self.catalog.model_list(Family.GEMINI))

    render_HEAD = render_GET

    def model_child(self, path: bytes, request: Request) -> IResource:
        if not path:
            return self
        return GeminiModelInfo(self.catalog, path.decode("utf-8", "replace"))


class GeminiModelInfo(ApiResource):
    """GET /v1beta/models/{model}; a POST without `:method` is a 404 naming the form."""

    family = Family.GEMINI

    def __init__(self, catalog: ModelLists, model: str) -> None:
        super().__init__()
        self.catalog = catalog
        self.model = model

    def render_GET(self, request: Request) -> bytes:
        found = self.catalog.gemini_model(self.model)
        if found is None:
            return error_response(
                request,
                Family.GEMINI,
                404,
                f"model {self.model!r} not found; GET /v1beta/models lists them",
            )
        return json_response(request, 200, found)

    render_HEAD = render_GET

    def render_POST(self, request: Request) -> bytes:
        return error_response(
            request,
            Family.GEMINI,
            404,
            f"{request.path.decode('latin-1')} not found; use /v1beta/models/{{model}}:{{method}}",
        )
