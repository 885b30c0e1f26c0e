# -*- test-case-name: tests.management.test_provider_logins -*-
"""`POST /vertex/import`: a Vertex service-account key uploaded as an auth file.

As CLIProxyAPI's `ImportVertexCredential`: a multipart form with the key JSON as `file`
and an optional `location` (form field or query; default `us-central1`) and, ours,
`prefix`. The key is checked before anything is written (`invalid json`, `invalid service
account` with the field named); the file is `vertex-<project>.json` in CLIProxyAPI's
format, picked up at once. Answers `{"status":"ok","auth-file","project_id","email",
"location"}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.web.server import Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.service_account import ServiceAccountError
from cliproxy.credentials.store import MAX_FILE_BYTES
from cliproxy.credentials.vertex_import import save_service_account
from cliproxy.management.authfiles import multipart_parts
from cliproxy.management.resource import BadRequest, Endpoint, answer, query

__all__ = ["VertexImport"]


class VertexImport(Endpoint):
    def __init__(self, store: ConfigStore, saved: Callable[[], object]) -> None:
        super().__init__()
        self.store, self.saved = store, saved

    def render_POST(self, request: Request) -> bytes:
        auth_dir = self.store.current.auth_dir
        if not auth_dir:
            raise BadRequest("auth directory not configured", 503)
        content = request.content
        body = content.read(MAX_FILE_BYTES + 1) if content is not None else b""
        if len(body) > MAX_FILE_BYTES:
            raise BadRequest("file too large", 413)
        parts = multipart_parts(request, body)
        files = [c for name, _, c in parts if name == "file"]
        if not files:
            raise BadRequest("file required")
        fields = {name: c.decode("utf-8", "replace").strip() for name, f, c in parts if not f}
        try:
            sa: Any = json.loads(files[0])
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("invalid json") from None
        location = fields.get("location") or (query(request, "location") or "").strip()
        prefix = fields.get("prefix") or (query(request, "prefix") or "").strip()
        try:
            path, record = save_service_account(sa, auth_dir, prefix=prefix, location=location)
        except ServiceAccountError as e:
            raise BadRequest(f"invalid service account: {e}") from None
        except OSError as e:
            raise BadRequest(f"save_failed: {e.strerror or e}", 500) from None
        self.saved()
        return answer(
            request,
            {
                "status": "ok",
                "auth-file": path,
                "project_id": record["project_id"],
                "email": record["email"],
                "location": record["location"],
            },
        )
