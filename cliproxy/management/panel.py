# -*- test-case-name: tests.management.test_panel -*-
"""`/management.html` and the built-in status page's one summary endpoint.

`/management.html` serves the panel file where CLIProxyAPI keeps it: `MANAGEMENT_STATIC_PATH`
(a directory, or the file itself), else `$WRITABLE_PATH/static/`, else `static/` beside
config.yaml. When the file is missing (or its last release check is old) the official
panel is fetched first (`panel_fetch`), unless `disable-auto-update-panel: true`. With no
file after that it serves the built-in status page (`panel_page`).
`disable-control-panel: true` answers 404.

`GET /v0/management/panel-status` (ours, behind the management key) is what the built-in
page reads: credentials with state and cooldown times, usage by model, Amp route counts
and recent failed calls.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy import __version__
from cliproxy.config.watcher import ConfigStore
from cliproxy.management.authfiles import AuthFileDeps, describe, iso_time
from cliproxy.management.panel_fetch import ASSET, PanelFetcher, static_dir
from cliproxy.management.panel_page import SCRIPT, STYLE, page
from cliproxy.management.resource import Endpoint, answer, error
from cliproxy.management.usage import CredentialView
from cliproxy.web.state import client_gone

RECENT_ERRORS = 20
#: the files a panel file may be, at most (the official one is about 2 MB)
MAX_PANEL_BYTES = 16 * 1024 * 1024


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


BUILTIN = page().encode("utf-8")
BUILTIN_CSP = (
    f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
).encode("ascii")


def panel_path(config_path: str, environ: Mapping[str, str]) -> str:
    """Where the panel file is looked for (CLIProxyAPI's `managementasset.FilePath`)."""
    return os.path.join(static_dir(config_path, dict(environ)), ASSET)


class PanelPage(Resource):
    """GET `/management.html`.

    Args:
        store: the live config.
        environ: for `MANAGEMENT_STATIC_PATH` and `WRITABLE_PATH`.
        fetcher: fetches the official panel (None: never).
    """

    isLeaf = True

    def __init__(
        self, store: ConfigStore, environ: Mapping[str, str], fetcher: PanelFetcher | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store = store
        self.environ = environ
        self.fetcher = fetcher

    def render_GET(self, request: Request) -> bytes | int:
        config = self.store.current
        management = config.remote_management
        if management.disable_control_panel:
            return error(request, 404, "not found")
        path = panel_path(config.source_path, self.environ)
        fetcher = self.fetcher
        if fetcher is None or management.disable_auto_update_panel or not fetcher.due(path):
            return self.serve(request, path)
        d = fetcher.ensure(path)
        request.notifyFinish().addErrback(lambda _: d.cancel())

        def fetched(_: None) -> None:
            if not client_gone(request):
                request.write(self.serve(request, path))
                request.finish()

        d.addCallback(fetched)
        return NOT_DONE_YET

    def serve(self, request: Request, path: str) -> bytes:
        """The panel file at `path`, else the built-in page."""
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        try:
            with open(path, "rb") as f:
                body = f.read(MAX_PANEL_BYTES + 1)
        except OSError:
            body = b""
        if body and len(body) <= MAX_PANEL_BYTES:
            return body
        request.setHeader(b"content-security-policy", BUILTIN_CSP)
        request.setHeader(b"x-frame-options", b"DENY")
        return BUILTIN

    def render_HEAD(self, request: Request) -> bytes | int:
        return self.render_GET(request)


def _state(file: dict[str, Any]) -> str:
    if file["disabled"]:
        return "disabled"
    if file["token_status"] not in ("ok", "active", ""):
        return "refresh_failing"
    return "cooling" if file["unavailable"] else "ready"


class PanelStatus(Endpoint):
    """GET `/v0/management/panel-status`: the built-in page's summary."""

    def __init__(
        self,
        deps: AuthFileDeps,
        view: CredentialView,
        amp_routes: Callable[[], Mapping[str, int]],
    ) -> None:
        super().__init__()
        self.deps = deps
        self.view = view
        self.amp_routes = amp_routes

    def render_GET(self, request: Request) -> bytes:
        return answer(
            request,
            {
                "version": __version__,
                "credentials": self.credentials(),
                "usage_by_model": {
                    m: t.as_dict() for m, t in sorted(self.deps.usage.by_model.items())
                },
                "amp_routes": dict(sorted(self.amp_routes().items())),
                "recent_errors": self.recent_errors(),
            },
        )

    def credentials(self) -> list[dict[str, Any]]:
        out = []
        for account in self.deps.authdir.accounts():
            f = describe(self.deps, account)
            out.append({**_pick(f), "state": _state(f), "file": f["name"]})
        files = {o["id"] for o in out}
        book = self.deps.usage.by_credential
        for cred in self.view.all():
            if cred.id in files or cred.id.split(":", 1)[0] in files:
                continue
            totals = book.get(cred.id)
            until = self.view.pool_until(cred.id)
            out.append(
                {
                    "id": cred.id,
                    "provider": cred.provider,
                    "label": f"…{cred.api_key[-4:]}" if cred.api_key else "",
                    "disabled": cred.disabled,
                    "next_retry_after": iso_time(until[0]) if until[0] else None,
                    "quota_reset_at": iso_time(until[1]) if until[1] else None,
                    "success": (totals.requests - totals.failed) if totals else 0,
                    "failed": totals.failed if totals else 0,
                    "state": self.view.state_of(cred),
                    "file": None,
                }
            )
        return out

    def recent_errors(self) -> list[dict[str, Any]]:
        failed = [r for r in self.deps.usage.records if r.status >= 400][-RECENT_ERRORS:]
        return [
            {
                "time": iso_time(r.time),
                "provider": r.provider,
                "credential": r.credential_id,
                "model": r.model,
                "status": r.status,
            }
            for r in reversed(failed)
        ]


_FIELDS = (
    "id",
    "provider",
    "label",
    "disabled",
    "next_retry_after",
    "quota_reset_at",
    "success",
    "failed",
)


def _pick(file: dict[str, Any]) -> dict[str, Any]:
    return {k: file[k] for k in _FIELDS}
