# -*- test-case-name: tests.amp.test_providers -*-
"""Amp's routes as a Resource subtree.

`/api/provider/{provider}/...` is walked by `getChild`: provider -> version (`v1`,
`v1beta`, none) -> call. The call leaves are the same endpoint Resources that serve `/v1`
and `/v1beta`, reached through `AmpCall` (the fallback decision: local provider, model
mapping or the Amp upstream) and wrapped once by the client-key guard. Listings answer in
the provider's family shape (anthropic: Claude, google: Gemini, anything else: OpenAI).

Everything else Amp uses (`/api/*`, `/threads`, `/auth`, `/docs`, `/settings`, `/actors`,
the feeds) is `AmpManagement`: no CORS, OPTIONS refused, the localhost check, the route's
key rule, then the reverse proxy to the Amp upstream or the WebSocket gateway.

The Site hands every resource normalised path segments (`.`/`..`/empty removed, encoded
`/` split), so what was checked is what is proxied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from cliproxy.amp.access import LOCALHOST_ONLY, NOT_CONFIGURED, is_loopback_peer
from cliproxy.amp.gateway import wants_upgrade
from cliproxy.amp.module import AmpModule
from cliproxy.amp.paths import MOUNTS, AmpRoute, classify, normalise
from cliproxy.formats import Family
from cliproxy.web.endpoints import Backend
from cliproxy.web.errors import error_response, family_for_path, json_response, set_json_response
from cliproxy.web.errors import json_bytes as _json_bytes
from cliproxy.web.guard import KeyGuard, check_client_key
from cliproxy.web.guard import candidate_keys as _candidate_keys
from cliproxy.web.models import ModelLists
from cliproxy.web.resources import (
    ApiResource,
    Container,
    Node,
    NotFound,
    OwnPreflight,
    Preflight,
    method_not_allowed,
)
from cliproxy.web.state import state_of

log = Logger()

INVALID_BRIDGE_PATH = {"error": "Invalid Gemini API path format"}


@dataclass(frozen=True)
class CallEndpoints:
    """The `/v1` endpoint Resources Amp's provider routes reuse."""

    chat: IResource
    completions: IResource
    responses: IResource
    messages: IResource
    count_tokens: IResource


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


def _rest(request: Request) -> str:
    """The path below the resource being rendered, as text."""
    segments = [*(request.prepath or [])[-1:], *(request.postpath or [])]
    return "/".join(s.decode("utf-8", "replace") for s in segments)


# -- call leaves ---------------------------------------------------------------------------


class AmpCall(ApiResource):
    """POST a model call: the fallback decides who serves it, `endpoint` if local."""

    def __init__(self, module: AmpModule, endpoint: IResource, family: Family) -> None:
        super().__init__()
        self.module = module
        self.endpoint = endpoint
        self.family = family

    def render_POST(self, request: Request) -> bytes | int:
        return self.module.fallback.serve(request, self.endpoint)


class AmpGeminiCall(ApiResource):
    """POST `.../models/{model}:{method}` (the model may hold `/`)."""

    family = Family.GEMINI

    def __init__(self, module: AmpModule) -> None:
        super().__init__()
        self.module = module

    def render_POST(self, request: Request) -> bytes | int:
        action = _rest(request)
        model, sep, method = action.rpartition(":")
        if not sep or not model or not method:
            return error_response(
                request,
                Family.GEMINI,
                400,
                f"'{action}' is not {{model}}:{{method}}; use .../models/{{model}}:generateContent",
            )
        return self.module.fallback.serve(request, None, (model, method))


class AmpBridgeCall(ApiResource):
    """POST `/api/provider/google/v1beta1/.../models/{model}:{method}`."""

    family = Family.GEMINI

    def __init__(self, module: AmpModule) -> None:
        super().__init__()
        self.module = module

    def render_POST(self, request: Request) -> bytes | int:
        found = bridge_action(
            "/" + "/".join(s.decode("utf-8", "replace") for s in request.postpath or [])
        )
        if found is None:
            return set_json_response(request, 400, _json_bytes(INVALID_BRIDGE_PATH))
        return self.module.fallback.serve(request, None, found)


class AmpListing(ApiResource):
    """GET `.../models` in the provider family's shape; `GET .../models/{model}` (Gemini)."""

    isLeaf = False

    def __init__(self, catalog: ModelLists, family: Family, gemini_call: IResource | None) -> None:
        super().__init__()
        self.catalog = catalog
        self.family = family
        self.gemini_call = gemini_call

    def render_GET(self, request: Request) -> bytes:
        return json_response(request, 200, self.catalog.model_list(self.family))

    render_HEAD = render_GET

    def getChild(self, path: bytes, request: Request) -> IResource:
        if request.method == b"POST" and self.gemini_call is not None:
            return self.gemini_call
        if self.family is Family.GEMINI and request.method in (b"GET", b"HEAD"):
            return _GeminiModelInfo(self.catalog)
        return NotFound()


class _GeminiModelInfo(ApiResource):
    family = Family.GEMINI

    def __init__(self, catalog: ModelLists) -> None:
        super().__init__()
        self.catalog = catalog

    def render_GET(self, request: Request) -> bytes:
        name = _rest(request)
        found = self.catalog.gemini_model(name)
        if found is None:
            return error_response(
                request,
                Family.GEMINI,
                404,
                f"model {name!r} not found; GET /v1beta/models lists them",
            )
        return json_response(request, 200, found)

    render_HEAD = render_GET


# -- the provider subtree -------------------------------------------------------------------


class ProviderTree:
    """The resources of `/api/provider/...`, built once and shared by every provider.

    What `ProviderRoot` hands out is wrapped in the client-key guard; a guard also wraps
    whatever lies below what it guards, so `messages/count_tokens` is guarded too.
    """

    def __init__(
        self,
        module: AmpModule,
        endpoints: CallEndpoints,
        catalog: ModelLists,
        api_keys: Callable[[], tuple[str, ...]],
        management: IResource,
    ) -> None:
        self.api_keys = api_keys
        self.management = management
        self.bridge: IResource = AmpBridgeCall(module)
        chat = Container()
        chat.putChild(b"completions", AmpCall(module, endpoints.chat, Family.OPENAI))
        messages = AmpCall(module, endpoints.messages, Family.CLAUDE)
        messages.isLeaf = False
        messages.putChild(b"count_tokens", AmpCall(module, endpoints.count_tokens, Family.CLAUDE))
        self.calls: dict[bytes, IResource] = {
            b"chat": chat,
            b"completions": AmpCall(module, endpoints.completions, Family.OPENAI),
            b"responses": AmpCall(module, endpoints.responses, Family.OPENAI),
            b"messages": messages,
        }
        gemini = AmpGeminiCall(module)
        self.listings = {family: AmpListing(catalog, family, None) for family in Family}
        self.versioned_listings = {family: AmpListing(catalog, family, gemini) for family in Family}
        v1beta = Container()
        v1beta.putChild(b"models", self.guarded(AmpListing(catalog, Family.GEMINI, gemini)))
        self.v1beta: IResource = v1beta

    def guarded(self, resource: IResource) -> IResource:
        return KeyGuard(resource, self.api_keys)


class ProviderIndex(Node):
    """`/api/provider`: the next segment names the provider."""

    def __init__(self, tree: ProviderTree) -> None:
        super().__init__()
        self.tree = tree

    def getChild(self, path: bytes, request: Request) -> IResource:
        return ProviderRoot(self.tree, path.decode("utf-8", "replace"))

    def render(self, request: Request) -> bytes:
        if request.method == b"OPTIONS":
            return Preflight().render(request)
        return NotFound().render(request)


class ProviderRoot(Container):
    """`/api/provider/{provider}`: a version segment, or a call straight away."""

    def __init__(self, tree: ProviderTree, provider: str, versioned: bool = False) -> None:
        super().__init__()
        self.tree = tree
        self.provider = provider
        self.versioned = versioned

    def render(self, request: Request) -> bytes:
        if request.method == b"OPTIONS":
            return Preflight().render(request)
        return NotFound().render(request)

    def getChild(self, path: bytes, request: Request) -> IResource:
        child = self._child(path, request)
        if request.method == b"OPTIONS" and child is not self.tree.management:
            return Preflight()
        return child

    def _child(self, path: bytes, request: Request) -> IResource:
        tree = self.tree
        if not self.versioned:
            if path == b"v1":
                return ProviderRoot(tree, self.provider, versioned=True)
            if path == b"v1beta":
                return tree.v1beta
            if path == b"v1beta1" and self.provider.lower() == "google":
                if request.method == b"POST" and b"/models/" in b"/" + b"/".join(
                    request.postpath or []
                ):
                    return tree.guarded(tree.bridge)
                return tree.management
        if path == b"models":
            listings = tree.versioned_listings if self.versioned else tree.listings
            return tree.guarded(listings[listing_family(self.provider)])
        found = tree.calls.get(path)
        return tree.guarded(found) if found is not None else NotFound()


# -- management routes ------------------------------------------------------------------------


class AmpManagement(OwnPreflight):
    """Amp's account and control routes: proxied to the Amp upstream."""

    isLeaf = True

    def __init__(self, module: AmpModule, api_keys: Callable[[], tuple[str, ...]]) -> None:
        super().__init__()
        self.module = module
        self.api_keys = api_keys

    def render(self, request: Request) -> bytes | int:
        state = state_of(request)
        segments = state.segments if state.segments is not None else normalise(request.path)
        route = classify(segments, request.method)
        if route.kind == "none":
            return NotFound().render(request)
        if request.method == b"OPTIONS":
            # browsers must not reach Amp's account routes from other origins
            request.setResponseCode(403)
            return b""
        refused = self._refuse(request, route)
        if refused is not None:
            return refused
        if route.kind == "gateway" and wants_upgrade(request):
            return self.module.gateway.upgrade(request)
        return self.module.proxy.render(request)

    def _refuse(self, request: Request, route: AmpRoute) -> bytes | None:
        module = self.module
        family = family_for_path(request.path)
        if route.methods is not None and request.method not in route.methods:
            methods = sorted(m.decode("ascii") for m in route.methods)
            return method_not_allowed(_Methods(methods), request, family)
        if not module.upstream_url:
            return json_response(request, 503, NOT_CONFIGURED)
        if module.settings.restrict_management_to_localhost:
            peer = request.getClientAddress()
            if not is_loopback_peer(peer):
                log.warn(
                    "amp management: {path} from non-loopback peer {peer} refused",
                    path=request.path.decode("latin-1", "replace").split("?", 1)[0],
                    peer=getattr(peer, "host", peer),
                )
                return json_response(request, 403, LOCALHOST_ONLY)
        api_keys = self.api_keys()
        if route.auth == "required":
            return check_client_key(request, api_keys)
        if route.auth == "optional":
            if _candidate_keys(request) or not api_keys:
                return check_client_key(request, api_keys)
            # nothing offered: pass through on the client's own tokens, not our key
            state_of(request).inject_upstream_key = False
        return None


class _Methods:
    """Stands for a resource with these `render_*` methods, for the 405's `Allow`."""

    def __init__(self, methods: list[str]) -> None:
        for m in methods:
            setattr(self, "render_" + m, True)


class AmpApi(OwnPreflight):
    """`/api`: `provider` is served here; every other group goes to the Amp upstream."""

    def __init__(self, providers: ProviderIndex, management: AmpManagement) -> None:
        super().__init__()
        self.providers = providers
        self.management = management

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"provider":
            return self.providers
        return self.management

    def render(self, request: Request) -> bytes | int:
        return self.management.render(request)


def mount_amp(
    root: Resource,
    module: AmpModule,
    endpoints: CallEndpoints,
    catalog: ModelLists,
    api_keys: Callable[[], tuple[str, ...]],
) -> None:
    """Put Amp's routes on `root`: `/api` and the management names."""
    management = AmpManagement(module, api_keys)
    tree = ProviderTree(module, endpoints, catalog, api_keys, management)
    root.putChild(b"api", AmpApi(ProviderIndex(tree), management))
    for name in MOUNTS:
        if name != "api":
            root.putChild(name.encode("ascii"), management)


__all__ = [
    "AmpApi",
    "AmpCall",
    "AmpManagement",
    "Backend",
    "CallEndpoints",
    "ProviderIndex",
    "bridge_action",
    "listing_family",
    "mount_amp",
]
