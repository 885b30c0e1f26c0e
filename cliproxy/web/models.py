# -*- test-case-name: tests.web.test_surface -*-
"""Model listings: `/v1/models` (OpenAI shape; Claude shape for claude-cli), `/v1beta/models`."""

from __future__ import annotations

from twisted.web.server import Request

from cliproxy.formats import Family
from cliproxy.web.errors import error_response, json_response
from cliproxy.web.resources import ApiResource, method_not_allowed


class OpenAIModels(ApiResource):
    """GET /v1/models. Claude Code (User-Agent claude-cli/...) gets Anthropic's shape."""

    family = Family.OPENAI

    def render_GET(self, request: Request) -> bytes:
        ua = (request.getHeader(b"user-agent") or b"").lower()
        if ua.startswith(b"claude-cli"):
            return json_response(request, 200, self.app.model_list(Family.CLAUDE))
        return json_response(request, 200, self.app.model_list(Family.OPENAI))

    render_HEAD = render_GET

    def render_POST(self, request: Request) -> bytes | int:
        # Gemini's API answers on /v1/models/{model}:{method} as well as under /v1beta
        # (google-genai picks the version); anything else POSTed here is a 405.
        if request.postpath and b":" in request.postpath[-1]:
            return gemini_call(self.app, request)
        return method_not_allowed(self, request, Family.OPENAI)


class GeminiModels(ApiResource):
    """GET /v1beta/models and GET /v1beta/models/{model}."""

    family = Family.GEMINI

    def render_GET(self, request: Request) -> bytes:
        rest = request.postpath
        if rest and rest[0]:
            model = rest[0].decode("utf-8", "replace")
            found = self.app.gemini_model(model)
            if found is None:
                return error_response(
                    request,
                    Family.GEMINI,
                    404,
                    f"model {model!r} not found; GET /v1beta/models lists them",
                )
            return json_response(request, 200, found)
        return json_response(request, 200, self.app.model_list(Family.GEMINI))

    def render_POST(self, request: Request) -> bytes | int:
        return gemini_call(self.app, request)


def gemini_call(app: object, request: Request) -> bytes | int:
    """POST .../models/{model}:{method}, the model taken from the rest of the path."""
    from cliproxy.web.endpoints import GeminiModel

    target = b"/".join(request.postpath).decode("utf-8", "replace")
    model, sep, method = target.rpartition(":")
    if not sep or not model:
        return error_response(
            request,
            Family.GEMINI,
            404,
            f"{request.path.decode('latin-1')} not found; use /v1beta/models/{{model}}:{{method}}",
        )
    return GeminiModel(app, model, method).render_POST(request)
