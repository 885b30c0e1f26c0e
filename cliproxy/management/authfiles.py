# -*- test-case-name: tests.management.test_authfiles -*-
"""`/v0/management/auth-files`: list, download, upload, delete and (dis)able token files.

Names are plain base names ending in `.json`; anything that could reach outside auth-dir
(`../`, a separator, a leading dot) is refused. Changes are written like a refreshed
token (atomic, 0600) and picked up at once by an `AuthDir.scan`.
"""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from cliproxy.credentials.affinity import SessionAffinity
from cliproxy.credentials.authdir import Account, AuthDir
from cliproxy.credentials.model import Credential
from cliproxy.credentials.pool import CredentialPool
from cliproxy.credentials.store import MAX_FILE_BYTES, write_auth_file
from cliproxy.management.resource import (
    BadRequest,
    Endpoint,
    Node,
    answer,
    query,
    query_all,
    read_json,
)
from cliproxy.registry import ModelRegistry
from cliproxy.usage import UsageBook


def safe_name(name: str | None) -> str:
    """`name` if it is a plain `*.json` file name.

    Raises:
        BadRequest: anything else (a path, `..`, a hidden file, another extension).
    """
    if not name or "/" in name or "\\" in name or "\0" in name:
        raise BadRequest("invalid name")
    if name.startswith(".") or not name.lower().endswith(".json") or name != os.path.basename(name):
        raise BadRequest("invalid name")
    return name


@dataclass(frozen=True)
class AuthFileDeps:
    authdir: AuthDir
    pool: CredentialPool
    usage: UsageBook
    now: Callable[[], float]
    #: the live model registry (for `auth-files/models`)
    registry: Callable[[], ModelRegistry] | None = None
    #: routing.session-affinity bindings (shown per file)
    affinity: SessionAffinity | None = None


def _bound_sessions(deps: AuthFileDeps, name: str) -> int:
    """How many live sessions routing.session-affinity keeps on the file's credentials."""
    if deps.affinity is None:
        return 0
    return sum(
        1 for cid in deps.affinity.bindings().values() if cid == name or cid.startswith(name + "::")
    )


class _AuthEndpoint(Endpoint):
    def __init__(self, deps: AuthFileDeps) -> None:
        super().__init__()
        self.deps = deps

    def path_of(self, name: str | None) -> str:
        return os.path.join(self.deps.authdir.path, safe_name(name))

    def existing(self, name: str | None) -> str:
        path = self.path_of(name)
        if not os.path.isfile(path):
            raise BadRequest("file not found", 404)
        return path


def _cooling(deps: AuthFileDeps, name: str) -> tuple[float, float | None]:
    """(next retry time or 0, quota reset time or None) over the file's credentials."""
    now = deps.now()
    until, quota = 0.0, None
    for state in deps.pool.states():
        if state.credential_id == name or state.credential_id.startswith(name + ":"):
            if state.until > now:
                until = max(until, state.until)
                if state.quota:
                    quota = max(quota or 0.0, state.until)
    return until, quota


def describe(deps: AuthFileDeps, account: Account) -> dict[str, Any]:
    """One `files[]` entry of GET /auth-files (no secrets)."""
    name = account.id
    until, quota = _cooling(deps, name)
    try:
        st = os.stat(account.path)
        size, modtime = st.st_size, st.st_mtime
    except OSError:
        size, modtime = 0, 0.0
    totals = deps.usage.by_credential.get(name)
    failed = totals.failed if totals else 0
    if account.disabled:
        status = "disabled"
    elif account.status not in ("ok", "active", ""):
        status = "error"
    else:
        status = "active"
    return {
        "id": name,
        "auth_index": name,
        "name": name,
        "type": account.provider,
        "provider": account.provider,
        "label": account.email or name,
        "email": account.email,
        "status": status,
        "status_message": account.last_error,
        "token_status": account.status,
        "disabled": account.disabled,
        "unavailable": until > 0,
        "next_retry_after": iso_time(until) if until else None,
        "quota_reset_at": iso_time(quota) if quota else None,
        "runtime_only": False,
        "source": "file",
        "size": size,
        "modtime": iso_time(modtime),
        "path": account.path,
        "account_type": "oauth",
        "account": account.email,
        "expires_at": iso_time(account.expires_at) if account.expires_at else None,
        "success": (totals.requests - failed) if totals else 0,
        "failed": failed,
        "bound_sessions": _bound_sessions(deps, name),
    }


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def _parse_upload(raw: bytes) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid json") from None
    if not isinstance(record, dict):
        raise BadRequest("invalid json")
    return record


def multipart_parts(request: Request, body: bytes) -> list[tuple[str, str, bytes]]:
    """(field name, file name, content) of every part of a multipart/form-data body."""
    ctype = (request.getHeader(b"content-type") or b"").decode("latin-1")
    head = f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    out = []
    for part in message.iter_parts() if message.is_multipart() else []:
        name = str(part.get_param("name", header="content-disposition") or "")
        filename = str(part.get_filename() or "")
        content = part.get_payload(decode=True)
        out.append((name, filename, content if isinstance(content, bytes) else b""))
    return out


def multipart_files(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """(file name, content) of every `file` part of a multipart/form-data body."""
    return [(f, c) for name, f, c in multipart_parts(request, body) if name == "file"]


class AuthFiles(_AuthEndpoint):
    def render_GET(self, request: Request) -> bytes:
        files = [describe(self.deps, a) for a in self.deps.authdir.accounts()]
        return answer(request, {"files": sorted(files, key=lambda f: f["name"])})

    def render_POST(self, request: Request) -> bytes:
        content = request.content
        body = content.read() if content is not None else b""
        ctype = request.getHeader(b"content-type") or b""
        if ctype.lower().startswith(b"multipart/form-data"):
            return self._multipart(request, body)
        path = self.path_of(query(request, "name"))
        if len(body) > MAX_FILE_BYTES:
            raise BadRequest("file too large", 413)
        self._write(path, _parse_upload(body))
        return answer(request, {"status": "ok"})

    def _multipart(self, request: Request, body: bytes) -> bytes:
        parts = multipart_files(request, body)
        if not parts:
            raise BadRequest("no file uploaded")
        uploaded, failed = [], []
        for filename, content in parts:
            base = os.path.basename(filename.replace("\\", "/"))
            try:
                if len(content) > MAX_FILE_BYTES:
                    raise BadRequest("file too large", 413)
                self._write(self.path_of(base), _parse_upload(content))
                uploaded.append(base)
            except BadRequest as e:
                if len(parts) == 1:
                    raise
                failed.append({"name": base, "error": e.message})
        if len(parts) == 1:
            return answer(request, {"status": "ok"})
        status = "ok" if not failed else ("partial" if uploaded else "error")
        code = 200 if not failed else (207 if uploaded else 400)
        out = {"status": status, "uploaded": len(uploaded), "files": uploaded, "failed": failed}
        return answer(request, out, code)

    def _write(self, path: str, record: dict[str, Any]) -> None:
        write_auth_file(path, record)
        self.deps.authdir.scan()

    def render_DELETE(self, request: Request) -> bytes:
        directory = self.deps.authdir.path
        if query(request, "all") in ("true", "1"):
            names = [n for n in os.listdir(directory) if n.endswith(".json")]
        else:
            names = [safe_name(n) for n in query_all(request, "name")]
            if not names:
                raise BadRequest("missing name")
        deleted = 0
        for name in names:
            try:
                os.unlink(os.path.join(directory, safe_name(name)))
                deleted += 1
            except FileNotFoundError:
                if len(names) == 1:
                    raise BadRequest("file not found", 404) from None
        self.deps.authdir.scan()
        return answer(request, {"status": "ok", "deleted": deleted})


class Download(_AuthEndpoint):
    def render_GET(self, request: Request) -> bytes:
        name = query(request, "name")
        path = self.existing(name)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-disposition", f'attachment; filename="{name}"'.encode())
        return data


def _record(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        return _parse_upload(f.read(MAX_FILE_BYTES + 1))


class Status(_AuthEndpoint):
    """PATCH `{"name", "disabled": bool}`."""

    def render_PATCH(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("disabled"), bool):
            raise BadRequest("invalid body")
        path = self.existing(body.get("name"))
        record = _record(path)
        record["disabled"] = body["disabled"]
        self._save(path, record)
        return answer(request, {"status": "ok", "disabled": body["disabled"]})

    def _save(self, path: str, record: dict[str, Any]) -> None:
        write_auth_file(path, record)
        self.deps.authdir.scan()


class Fields(Status):
    """PATCH `{"name", "<field or dotted.path>": value, ...}`."""

    def render_PATCH(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or len(body) < 2:
            raise BadRequest("invalid body")
        path = self.existing(body.pop("name", None))
        record = _record(path)
        for dotted, value in body.items():
            node = record
            *heads, last = str(dotted).split(".")
            for head in heads:
                node = node.setdefault(head, {}) if isinstance(node.get(head), dict | None) else {}
            node[last] = value
        self._save(path, record)
        return answer(request, {"status": "ok"})


class Models(_AuthEndpoint):
    """GET `?name=`: the models an auth file's credentials serve now (the live registry)."""

    def render_GET(self, request: Request) -> bytes:
        name = (query(request, "name") or "").strip()
        if not name:
            raise BadRequest("name is required")

        def mine(cred: Credential, _model: str = "") -> bool:
            return cred.id == name or cred.id.startswith(name + ":")

        models: list[dict[str, Any]] = []
        registry = self.deps.registry
        if registry is not None:
            for info in registry().list_models(mine):
                entry: dict[str, Any] = {"id": info.id}
                if info.display_name:
                    entry["display_name"] = info.display_name
                if info.providers:
                    entry["type"] = info.providers[0]
                if info.owned_by:
                    entry["owned_by"] = info.owned_by
                models.append(entry)
            return answer(request, {"models": models})
        for cred in self.deps.authdir.credentials():
            if mine(cred):
                for m in cred.models:
                    models.append({"id": m.alias, "display_name": m.alias, "type": cred.provider})
        return answer(request, {"models": models})


def auth_files_tree(deps: AuthFileDeps) -> Resource:
    node = Node(AuthFiles(deps))
    node.putChild(b"download", Download(deps))
    node.putChild(b"status", Status(deps))
    node.putChild(b"fields", Fields(deps))
    node.putChild(b"models", Models(deps))
    return node
