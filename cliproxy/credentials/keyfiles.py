# -*- test-case-name: tests.credentials.test_service_account -*-
"""Auth-dir files that hold a key rather than an OAuth login: Vertex service accounts.

`AuthDir` hands every file whose `type` is not an OAuth provider to `KeyFiles.load`; a
type listed here becomes credentials, anything else stays ignored. A service-account
file (`type: "vertex"`, written by `cliproxy login vertex --import` or CLIProxyAPI's
`--vertex-import`) keeps its token cache while the file's content is unchanged.

File fields (CLIProxyAPI's): `service_account` (the Google key JSON), `project_id`,
`location` (default `us-central1`; `global` uses the global host), `email`, `prefix`,
`priority`, `proxy_url`, `headers`, `excluded_models`, `disabled`; and ours:
`base_url` (a proxy or test server instead of the Google host).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from cliproxy.credentials.model import Credential
from cliproxy.credentials.service_account import (
    ServiceAccountError,
    ServiceAccountToken,
    parse_service_account,
)
from cliproxy.credentials.store import AuthFile

__all__ = [
    "KEY_FILE_TYPES",
    "SERVICE_ACCOUNT_OPTION",
    "KeyFiles",
    "service_account_of",
    "vertex_base_url",
]

#: auth-file types read here (not OAuth logins)
KEY_FILE_TYPES = ("vertex",)
#: the credential kind of auth-dir files (the registry applies oauth-model-alias to it)
FILE_KIND = "oauth"
#: the Credential option carrying the ServiceAccountToken
SERVICE_ACCOUNT_OPTION = "service-account"
DEFAULT_LOCATION = "us-central1"

Report = Callable[[str, str], None]


def vertex_base_url(location: str) -> str:
    """Google's Vertex host for `location` (`global` has no regional prefix)."""
    loc = location.strip() or DEFAULT_LOCATION
    if loc == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{loc}-aiplatform.googleapis.com"


def service_account_of(cred: Credential) -> ServiceAccountToken | None:
    token = cred.option(SERVICE_ACCOUNT_OPTION)
    return token if isinstance(token, ServiceAccountToken) else None


@dataclass
class _KeyFile:
    digest: str
    credentials: tuple[Credential, ...]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _text(record: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return int(str(value).strip()) if value is not None else 0
    except ValueError:
        return 0


def _list(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(dict.fromkeys(str(v).strip().lower() for v in items if str(v).strip()))


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    pairs = ((str(k).strip(), "" if v is None else str(v).strip()) for k, v in value.items())
    return tuple((k, v) for k, v in pairs if k and v and "\n" not in v and "\r" not in v)


def common_fields(name: str, record: dict[str, Any], report: Report) -> dict[str, Any]:
    """The Credential fields every auth file may set (prefix, priority, proxy, ...)."""
    prefix = _text(record, "prefix").strip("/")
    if "/" in prefix:
        report(name, f"prefix {prefix!r} must be one name without '/'; ignored")
        prefix = ""
    proxy = _text(record, "proxy_url", "proxy-url")
    return dict(
        proxy_url="direct" if proxy.lower() in ("direct", "none") else proxy,
        headers=_headers(record.get("headers")),
        prefix=prefix,
        priority=_int(record.get("priority")),
        excluded_models=_list(record.get("excluded_models", record.get("excluded-models"))),
        disabled=_truthy(record.get("disabled")),
        disable_cooling=_truthy(record.get("disable_cooling", record.get("disable-cooling"))),
    )


def vertex_credentials(
    name: str, record: dict[str, Any], clock: IReactorTime, report: Report
) -> tuple[Credential, ...]:
    """One `vertex` credential from a service-account file.

    Raises:
        ServiceAccountError: the key or project is missing or broken.
    """
    key = parse_service_account(record.get("service_account"))
    project = _text(record, "project_id", "project") or key.project_id
    if not project:
        raise ServiceAccountError("project_id is missing (in the file and in service_account)")
    location = _text(record, "location") or DEFAULT_LOCATION
    token = ServiceAccountToken(key, clock, name=name, token_url=_text(record, "token_uri"))
    options: dict[str, object] = {
        SERVICE_ACCOUNT_OPTION: token,
        "project_id": project,
        "location": location,
        "email": _text(record, "email") or key.client_email,
    }
    cred = Credential(
        id=name,
        provider="vertex",
        kind=FILE_KIND,
        api_key="",
        base_url=(_text(record, "base_url", "base-url") or vertex_base_url(location)).rstrip("/"),
        options=tuple(sorted(options.items())),
        **common_fields(name, record, report),
    )
    return (cred,)


_LOADERS = {"vertex": vertex_credentials}


class KeyFiles:
    """The key-holding files of one auth-dir, by file name."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._files: dict[str, _KeyFile] = {}

    @staticmethod
    def handles(file_type: str) -> bool:
        return file_type in _LOADERS

    def load(self, found: AuthFile, report: Report) -> bool:
        """Read one file of a handled type; True if the credentials changed."""
        name = found.name
        known = self._files.get(name)
        if known is not None and known.digest == found.digest:
            return False
        try:
            creds = _LOADERS[found.type](name, found.record, self.clock, report)
        except ServiceAccountError as e:
            report(name, f"skipped: {e}")
            return self.drop(name)
        self._files[name] = _KeyFile(found.digest, creds)
        return True

    def drop(self, name: str) -> bool:
        return self._files.pop(name, None) is not None

    def retain(self, names: Iterable[str]) -> bool:
        """Forget files no longer present; True if any was."""
        keep = set(names)
        gone = [n for n in self._files if n not in keep]
        for name in gone:
            del self._files[name]
        return bool(gone)

    def credentials(self) -> list[Credential]:
        return [c for name in sorted(self._files) for c in self._files[name].credentials]

    def by_file(self) -> dict[str, tuple[Credential, ...]]:
        """File name -> its credentials (for listings)."""
        return {name: f.credentials for name, f in self._files.items()}
