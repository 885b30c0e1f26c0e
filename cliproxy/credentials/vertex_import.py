# -*- test-case-name: tests.credentials.test_vertex_import -*-
"""`cliproxy login vertex --import KEY.json`: a service-account key as a `vertex-*.json` file.

Writes what CLIProxyAPI's `--vertex-import` writes (`service_account`, `project_id`,
`email`, `location: us-central1`, `type: vertex`, `prefix`, `label`), so either program
reads the other's files. The key is checked (RSA, PEM) before anything is written.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cliproxy.credentials.keyfiles import DEFAULT_LOCATION
from cliproxy.credentials.service_account import ServiceAccountError, parse_service_account
from cliproxy.credentials.store import write_auth_file

__all__ = ["import_service_account", "save_service_account", "vertex_file_name"]


def _safe(part: str) -> str:
    out = part.strip()
    for old, new in (("/", "_"), ("\\", "_"), (":", "_"), (" ", "-")):
        out = out.replace(old, new)
    return out


def vertex_file_name(project: str, prefix: str = "") -> str:
    """`vertex-<prefix>-<project>.json`, as CLIProxyAPI names it."""
    base = _safe(project)
    return f"vertex-{_safe(prefix)}-{base}.json" if prefix else f"vertex-{base}.json"


def _label(project: str, email: str) -> str:
    if project and email:
        return f"{project} ({email})"
    return project or email or "vertex"


def import_service_account(
    key_path: str, auth_dir: str, *, prefix: str = "", location: str = ""
) -> str:
    """Read a Google service-account key and save it in `auth_dir`; the saved path.

    Raises:
        ServiceAccountError: the key is not a usable service account (names the field).
        OSError: the key cannot be read or the file cannot be written.
    """
    with open(key_path, "rb") as f:
        raw = f.read()
    try:
        sa: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServiceAccountError(f"{key_path} is not JSON ({e})") from None
    return save_service_account(sa, auth_dir, prefix=prefix, location=location)[0]


def save_service_account(
    sa: Any, auth_dir: str, *, prefix: str = "", location: str = ""
) -> tuple[str, dict[str, Any]]:
    """Check a parsed service-account key and save it in `auth_dir`; (path, record).

    Raises:
        ServiceAccountError: the key is not a usable service account (names the field).
        OSError: the file cannot be written.
    """
    key = parse_service_account(sa)
    if not key.project_id:
        raise ServiceAccountError("project_id is missing in the service account")
    prefix = prefix.strip().strip("/")
    if "/" in prefix:
        raise ServiceAccountError(f"prefix {prefix!r} must be one name without '/'")
    record = {
        "service_account": sa,
        "project_id": key.project_id,
        "email": key.client_email,
        "location": location.strip() or DEFAULT_LOCATION,
        "type": "vertex",
        "prefix": prefix,
        "label": _label(key.project_id, key.client_email),
    }
    path = os.path.join(os.path.expanduser(auth_dir), vertex_file_name(key.project_id, prefix))
    write_auth_file(path, record)
    return path, record
