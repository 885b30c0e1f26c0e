# -*- test-case-name: tests.amp.test_providers -*-
"""Amp's provider routes, `/api/provider/{provider}/...`, on the `/v1` endpoint resources.

Root-level (`/chat/completions`, as groq/cerebras clients send), `/v1/...`, Gemini's
`/v1beta/models/...`, listings in the shape of the provider family (anthropic: Claude,
google: Gemini, anything else: OpenAI), and the Google `v1beta1` bridge
(`/publishers/google/models/{model}:{method}`). Model calls go through `AmpFallback`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from cliproxy.formats import Family
from cliproxy.web.errors import error_response, family_for_path, json_response, set_json_response
from cliproxy.web.errors import json_bytes as _json_bytes
from cliproxy.web.resources import NotFound, method_not_allowed

#: path (after the provider, without a leading `v1`) -> endpoint name
CALLS = {
    ("chat", "completions"): "chat",
    ("completions",): "completions",
    ("responses",): "responses",
    ("messages",): "messages",
    ("messages", "count_tokens"): "count_tokens",
}
INVALID_BRIDGE_PATH = {"error": "Invalid Gemini API path format"}


class _Allowed(Resource):
    """Stands for a resource with these `render_*` methods, for the 405's `Allow`."""

    def __init__(self, methods: Iterable[str]) -> None:
        super().__init__()
        for m in methods:
            setattr(self, "render_" + m, True)


def not_allowed(request: Request, family: Family, *methods: str) -> bytes:
    """A JSON 405 naming `methods` in `Allow`."""
    return method_not_allowed(_Allowed(methods), request, family)


def listing_family(provider: str) -> Family:
    provider = provider.lower()
    if provider == "anthropic":
        return Family.CLAUDE
    if provider == "google":
        return Family.GEMINI
    return Family.OPENAI


def bridge_action(path: str) -> tuple[str, str] | None:
    """`/publishers/google/models/gemini-pro:generateContent` -> (`gemini-pro`,
    `generateContent`); None when the path has no `/models/{model}:{method}`."""
    idx = path.find("/models/")
    if idx < 0:
        return None
    action = path[idx + len("/models/") :]
    model, sep, method = action.rpartition(":")
    if not sep or not model or not method:
        return None
    return model, method


class ProviderRoutes:
    """Dispatches an authenticated `/api/provider/...` request (segments normalised)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def render(self, request: Request, segments: tuple[str, ...]) -> Any:
        app = self.module.app
        method = request.method
        family = family_for_path(request.path)
        if len(segments) < 4:
            return NotFound().render(request)
        provider = segments[2]
        rest = segments[3:]
        if rest[0] == "v1beta":
            return self._v1beta(request, rest[1:])
        versioned = rest[0] == "v1"
        path = rest[1:] if versioned else rest
        if path == ("models",):
            if method not in (b"GET", b"HEAD"):
                return not_allowed(request, family, "GET", "HEAD")
            return json_response(request, 200, app.model_list(listing_family(provider)))
        if path in CALLS:
            if method != b"POST":
                return not_allowed(request, family, "POST")
            return self.module.fallback.serve(request, CALLS[path])
        if versioned and len(path) >= 2 and path[0] == "models" and method == b"POST":
            # Gemini's API answers on /v1/models/{model}:{method} too
            return self._gemini_call(request, "/".join(path[1:]))
        return NotFound().render(request)

    def _v1beta(self, request: Request, path: tuple[str, ...]) -> Any:
        app = self.module.app
        method = request.method
        if not path or path[0] != "models":
            return NotFound().render(request)
        if len(path) == 1:
            if method not in (b"GET", b"HEAD"):
                return not_allowed(request, Family.GEMINI, "GET", "HEAD")
            return json_response(request, 200, app.model_list(Family.GEMINI))
        name = "/".join(path[1:])
        if method in (b"GET", b"HEAD"):
            found = app.gemini_model(name)
            if found is None:
                return error_response(
                    request,
                    Family.GEMINI,
                    404,
                    f"model {name!r} not found; GET /v1beta/models lists them",
                )
            return json_response(request, 200, found)
        if method == b"POST":
            return self._gemini_call(request, name)
        return not_allowed(request, Family.GEMINI, "GET", "HEAD", "POST")

    def _gemini_call(self, request: Request, action: str) -> Any:
        model, sep, method = action.rpartition(":")
        if not sep or not model or not method:
            return error_response(
                request,
                Family.GEMINI,
                400,
                f"'{action}' is not {{model}}:{{method}}; use .../models/{{model}}:generateContent",
            )
        return self.module.fallback.serve(request, "gemini", (model, method))

    def bridge(self, request: Request, segments: tuple[str, ...]) -> Any:
        """POST `/api/provider/google/v1beta1/.../models/{model}:{method}`."""
        found = bridge_action("/" + "/".join(segments[4:]))
        if found is None:
            return set_json_response(request, 400, _json_bytes(INVALID_BRIDGE_PATH))
        return self.module.fallback.serve(request, "gemini", found)
