# -*- test-case-name: tests.amp.test_management -*-
"""`AmpFront`: the one Resource mounted at Amp's top-level names (`api`, `threads`, ...).

It normalises the path, classifies it (`paths.classify`) and applies the access rules:

* provider routes: CORS, preflight 204, client-key check, then `ProviderRoutes`;
* management routes: no CORS headers, any OPTIONS is 403, 503 when no upstream is
  configured, the localhost check on the TCP peer (hot-reloadable), the client-key
  check except on Amp's root-level login/thread pages, then `AmpProxy`;
* `/actors/...`: as management, but a key is only checked when one is offered, and a
  WebSocket upgrade becomes a tunnel (`AmpGateway`).
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from cliproxy.amp.access import LOCALHOST_ONLY, NOT_CONFIGURED, is_loopback_peer
from cliproxy.amp.gateway import wants_upgrade
from cliproxy.amp.paths import AmpRoute, classify, normalise
from cliproxy.amp.providers import not_allowed
from cliproxy.web.errors import error_response, family_for_path, json_response
from cliproxy.web.guard import authenticate, candidate_keys
from cliproxy.web.resources import NotFound, Preflight, add_cors

log = Logger()


class AmpFront(Resource):
    isLeaf = True
    #: Root sends OPTIONS here instead of answering the preflight itself
    answers_options = True

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    def render(self, request: Request) -> Any:
        segments = normalise(request.path or b"/")
        route = classify(segments, request.method)
        request.amp_segments = segments  # type: ignore[attr-defined]
        if route.kind == "none":
            if request.method == b"OPTIONS":
                return Preflight().render(request)
            return NotFound().render(request)
        if route.kind in ("provider", "bridge"):
            return self._provider(request, route, segments)
        return self._management(request, route)

    # -- provider routes -----------------------------------------------------------------

    def _provider(self, request: Request, route: AmpRoute, segments: tuple[str, ...]) -> Any:
        if request.method == b"OPTIONS":
            return Preflight().render(request)
        add_cors(request)
        family = family_for_path(request.path)
        auth = authenticate(request, self.module.app.config.api_keys)
        if not auth.ok:
            return error_response(request, family, 401, auth.message)
        request.client_key = auth.key  # type: ignore[attr-defined]
        if route.kind == "bridge":
            return self.module.providers.bridge(request, segments)
        return self.module.providers.render(request, segments)

    # -- management routes ---------------------------------------------------------------

    def _management(self, request: Request, route: AmpRoute) -> Any:
        module = self.module
        if request.method == b"OPTIONS":
            # browsers must not reach Amp's account routes from other origins
            request.setResponseCode(403)
            return b""
        if route.methods is not None and request.method not in route.methods:
            methods = sorted(m.decode("ascii") for m in route.methods)
            return not_allowed(request, family_for_path(request.path), *methods)
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
        api_keys = module.app.config.api_keys
        if route.auth == "required":
            auth = authenticate(request, api_keys)
            if not auth.ok:
                return error_response(request, family_for_path(request.path), 401, auth.message)
            request.client_key = auth.key  # type: ignore[attr-defined]
        elif route.auth == "optional":
            offered = candidate_keys(request)
            if offered or not api_keys:
                auth = authenticate(request, api_keys)
                if not auth.ok:
                    return error_response(request, family_for_path(request.path), 401, auth.message)
                request.client_key = auth.key  # type: ignore[attr-defined]
            else:
                # nothing offered: pass through on the client's own tokens, not our key
                request.amp_inject_key = False  # type: ignore[attr-defined]
        if route.kind == "gateway" and wants_upgrade(request):
            return module.gateway.upgrade(request)
        return module.proxy.render(request)
