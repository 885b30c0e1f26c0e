# -*- test-case-name: tests.oauth.test_store -*-
"""Token files in `auth-dir`, in CLIProxyAPI's names and fields (core.md §3.5).

A file is one JSON object; `type` says the provider (`claude`, `codex`, `gemini`).
Files are written atomically (a temporary file in the same directory, then a rename)
with mode 0600 in a 0700 directory, so a reader never sees half a token and other
users never see one at all. Fields we do not know are kept as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AuthFile",
    "AuthFileError",
    "EXPIRY_KEYS",
    "FILE_TYPES",
    "TOKEN_FIELDS",
    "codex_filename",
    "file_mode_problem",
    "filename_for",
    "format_time",
    "parse_time",
    "read_auth_file",
    "record_expiry",
    "record_last_refresh",
    "serialize",
    "write_auth_file",
]

#: auth-file `type` -> routing provider
FILE_TYPES = {"claude": "claude", "codex": "codex", "gemini": "gemini-cli"}
#: where CLIProxyAPI (and the libraries it embeds) keep the expiry, first match wins
EXPIRY_KEYS = ("expired", "expire", "expires_at", "expiresAt", "expiry", "expires")
LAST_REFRESH_KEYS = ("last_refresh", "lastRefresh", "last_refreshed_at")
#: token files larger than this are not token files
MAX_FILE_BYTES = 1024 * 1024
#: record fields a login or a refresh writes; every other key belongs to the user
TOKEN_FIELDS = frozenset(
    {
        "type",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "token_type",
        "expired",
        "expiry",
        "last_refresh",
        "email",
        "account_id",
    }
)


class AuthFileError(Exception):
    """A token file that cannot be used; the message says why, never what it holds."""


@dataclass(frozen=True, slots=True)
class AuthFile:
    """One token file as read: its path, raw bytes digest and JSON object."""

    path: str
    digest: str
    record: dict[str, Any]
    mode: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def type(self) -> str:
        return str(self.record.get("type") or "").strip().lower()


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_auth_file(path: str) -> AuthFile:
    """Read and parse one token file.

    Raises:
        AuthFileError: unreadable, too large, not UTF-8 JSON, or not a JSON object.
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > MAX_FILE_BYTES:
                raise AuthFileError(f"is {st.st_size} bytes, too large for a token file")
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise AuthFileError("was removed while being read") from None
    except PermissionError:
        raise AuthFileError("cannot be read: permission denied") from None
    except IsADirectoryError:
        raise AuthFileError("is a directory") from None
    except OSError as e:
        raise AuthFileError(f"cannot be read: {e.strerror or e}") from None
    return parse_auth_bytes(path, data, stat.S_IMODE(st.st_mode))


def parse_auth_bytes(path: str, data: bytes, mode: int = 0o600) -> AuthFile:
    """Parse the bytes of a token file (see `read_auth_file`)."""
    if not data.strip():
        raise AuthFileError("is empty (half-written?)")
    try:
        record = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise AuthFileError("is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        # the position helps find the damage; the content is never echoed
        raise AuthFileError(
            f"is not valid JSON (line {e.lineno}, column {e.colno}); half-written or damaged?"
        ) from None
    if not isinstance(record, dict):
        raise AuthFileError("is JSON but not an object")
    return AuthFile(path, digest_of(data), record, mode)


def file_mode_problem(mode: int) -> str | None:
    """Why `mode` exposes a token (group/other access), or None when it is private."""
    if mode & 0o077:
        return f"is readable by other users (mode {mode:04o}); run chmod 600 on it"
    return None


def serialize(record: dict[str, Any]) -> bytes:
    """The bytes we write: pretty JSON, as CLIProxyAPI writes them, ending in a newline."""
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_auth_file(path: str, record: dict[str, Any]) -> str:
    """Write `record` to `path` atomically with mode 0600; returns the bytes' digest.

    The directory is created with mode 0700 when missing. Concurrent readers see
    either the old file or the new one, never a mixture.

    Raises:
        OSError: the directory or file cannot be written.
    """
    data = serialize(record)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; umask games cannot widen it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return digest_of(data)


# -- times ---------------------------------------------------------------------------------


def format_time(epoch: float) -> str:
    """RFC 3339 in UTC with seconds, as CLIProxyAPI writes `expired` and `last_refresh`."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from RFC 3339 text or a Unix time (s or ms); None if unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e12 else float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return parse_time(float(text))
    # Go writes nanoseconds; Python 3.11 takes at most microseconds
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _first_time(record: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for source in (record, record.get("token")):
        if not isinstance(source, dict):
            continue
        for key in keys:
            found = parse_time(source.get(key))
            if found is not None:
                return found
    return None


def record_expiry(record: dict[str, Any]) -> float | None:
    """When the access token expires (first of `expired`, `expire`, ..., also inside `token`)."""
    return _first_time(record, EXPIRY_KEYS)


def record_last_refresh(record: dict[str, Any]) -> float | None:
    return _first_time(record, LAST_REFRESH_KEYS)


# -- names ---------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def _safe(part: str) -> str:
    """A piece of a file name: no path separators or spaces, never empty."""
    return _UNSAFE.sub("-", part.strip()).strip(".-") or "unknown"


def codex_filename(email: str, plan: str = "", account_id: str = "") -> str:
    """`codex-<email>[-<plan>].json`; team plans prefix a hash of the account id."""
    plan_part = "-".join(re.findall(r"[a-z0-9]+", plan.lower()))
    if plan_part == "team" and account_id:
        h = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:8]
        return f"codex-{h}-{_safe(email)}-team.json"
    if plan_part:
        return f"codex-{_safe(email)}-{plan_part}.json"
    return f"codex-{_safe(email)}.json"


def filename_for(record: dict[str, Any], plan: str = "") -> str:
    """The file name CLIProxyAPI would give this record."""
    kind = str(record.get("type") or "")
    email = str(record.get("email") or "")
    if kind == "claude":
        return f"claude-{_safe(email)}.json"
    if kind == "codex":
        return codex_filename(email, plan, str(record.get("account_id") or ""))
    if kind == "gemini":
        projects = [p for p in str(record.get("project_id") or "").split(",") if p.strip()]
        project = "all" if len(projects) > 1 else (projects[0] if projects else "auto")
        return f"gemini-{_safe(email)}-{_safe(project)}.json"
    if kind == "antigravity":
        return f"antigravity-{_safe(email)}.json" if email else "antigravity.json"
    raise ValueError(f"no file name rule for type {kind!r}")
