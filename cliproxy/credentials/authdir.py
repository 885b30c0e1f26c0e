# -*- test-case-name: tests.oauth.test_authdir -*-
"""The auth-dir: token files -> credentials, kept live by a polling watcher (core.md §3.5).

Every `*.json` directly in the directory is read. `type` picks the provider (`claude`,
`codex`, `gemini` -> `gemini-cli`); files without one are ignored. A file that is not
valid JSON is skipped and named in the log, never deleted or overwritten; while it is
damaged, the account keeps the last good version read from it. The credential id is
the file name, as in CLIProxyAPI.

Each file has one `TokenHolder` for as long as it exists, so a reload never interrupts
a refresh. Writing a refreshed token updates the remembered digest first, so the
watcher sees its own write as "unchanged" and nothing reloads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from cliproxy.config.model import XAI_BASE_URL, Config, GeminiEndpoints, OAuthEndpoints
from cliproxy.credentials.keyfiles import KeyFiles, service_account_of
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.filelock import Release, lock_path, take_lock
from cliproxy.credentials.oauth.holder import TokenHolder
from cliproxy.credentials.oauth.providers import ProviderSpec, spec_for
from cliproxy.credentials.oauth.records import codex_identity, refresh_token_of
from cliproxy.credentials.store import (
    TOKEN_FIELDS,
    AuthFile,
    AuthFileError,
    file_mode_problem,
    read_auth_file,
    write_auth_file,
)

__all__ = ["Account", "AuthDir", "AuthDirWatcher", "OAUTH_KIND", "holder_of"]

#: the credential kind of every auth-dir account (the registry applies oauth-* to it)
OAUTH_KIND = "oauth"
#: the Credential option that carries the TokenHolder
HOLDER_OPTION = "oauth"
#: a file modified this recently is re-hashed on every scan (mtime is coarse on some filesystems)
_SETTLE_NS = 2_000_000_000

Subscriber = Callable[[], object]


def holder_of(cred: Credential) -> TokenHolder | None:
    """The TokenHolder of an auth-dir credential (None for config credentials)."""
    holder = cred.option(HOLDER_OPTION)
    return holder if isinstance(holder, TokenHolder) else None


@dataclass(frozen=True, slots=True)
class Account:
    """One auth file as listings show it (no secrets)."""

    id: str
    provider: str
    email: str
    path: str
    status: str
    last_error: str
    expires_at: float | None
    disabled: bool


@dataclass
class _Entry:
    name: str
    path: str
    digest: str
    record: dict[str, Any]
    spec: ProviderSpec
    holder: TokenHolder


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


#: `_reported` marker of a file whose type no executor serves (followed by the type)
_UNSERVED = "unserved:"


class AuthDir:
    """The accounts in one directory.

    Args:
        directory: returns the live `auth-dir` (`~` expanded by config loading).
        clock: `IReactorTime` for the token holders.
        endpoints: returns the live `oauth-endpoints`.
    """

    log = Logger()

    def __init__(
        self,
        directory: Callable[[], str],
        clock: IReactorTime,
        endpoints: Callable[[], OAuthEndpoints],
        *,
        shared: bool = False,
        refresh_lock: Callable[[str, TokenHolder], defer.Deferred[Release]] | None = None,
    ) -> None:
        self._directory = directory
        #: other processes (workers) serve the same files: refresh under a file lock
        self._shared = shared
        #: other hosts share the tokens (cliproxy.store): refresh under their lock instead
        self._refresh_lock = refresh_lock
        self.clock = clock
        self._endpoints = endpoints
        self._dir: str | None = None
        self._entries: dict[str, _Entry] = {}
        self._stats: dict[str, tuple[int, int, int]] = {}
        #: file name -> the problem already logged (each problem is logged once)
        self._reported: dict[str, str] = {}
        self._unserved: tuple[str, ...] = ()
        self._dir_problem = ""
        self._subscribers: list[Subscriber] = []
        #: files holding keys, not logins (Vertex service accounts)
        self.keyfiles = KeyFiles(clock)

    # -- reading -------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return os.path.expanduser(self._directory() or "")

    def subscribe(self, callback: Subscriber) -> None:
        """Call `callback()` after a scan that changed the accounts."""
        self._subscribers.append(callback)

    def holders(self) -> list[TokenHolder]:
        return [e.holder for e in self._entries.values()]

    def accounts(self) -> list[Account]:
        """Every loaded auth file, with its token status (`ok`, `needs-login`, ...); key
        files (Vertex service accounts) too."""
        return sorted(self._token_accounts() + self._key_accounts(), key=lambda a: a.id)

    def _key_accounts(self) -> list[Account]:
        out = []
        for name, creds in self.keyfiles.by_file().items():
            if not creds:
                continue
            cred = creds[0]
            token = service_account_of(cred)
            out.append(
                Account(
                    id=name,
                    provider=cred.provider,
                    email=str(cred.option("email") or ""),
                    path=os.path.join(self.path, name),
                    status="ok",
                    last_error="",
                    expires_at=token.expiry if token is not None else None,
                    disabled=cred.disabled,
                )
            )
        return out

    def _token_accounts(self) -> list[Account]:
        return [
            Account(
                id=e.name,
                provider=e.spec.routing,
                email=str(e.record.get("email") or ""),
                path=e.path,
                status=e.holder.status,
                last_error=e.holder.last_error,
                expires_at=e.holder.expiry,
                disabled=_truthy(e.record.get("disabled")),
            )
            for e in sorted(self._entries.values(), key=lambda e: e.name)
        ]

    def credentials(self, endpoints: OAuthEndpoints | None = None) -> list[Credential]:
        """One credential per account (Gemini files naming several projects: one each)."""
        endpoints = endpoints or self._endpoints()
        out: list[Credential] = []
        for name in sorted(self._entries):
            out.extend(_credentials(self._entries[name], endpoints, self._report))
        return out + self.keyfiles.credentials()

    # -- scanning ------------------------------------------------------------------------

    def _report(self, name: str, problem: str, level: str = "warn") -> None:
        if self._reported.get(name) == problem:
            return
        self._reported[name] = problem
        getattr(self.log, level)("auth file {name}: {problem}", name=name, problem=problem)

    def _listing(self, directory: str) -> list[str] | None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            problem = f"auth-dir {directory} does not exist yet (`cliproxy login` creates it)"
            names = []
        except OSError as e:
            problem = f"auth-dir {directory} cannot be read: {e.strerror or e}"
            if problem != self._dir_problem:
                self._dir_problem = problem
                self.log.error("{problem}; keeping the accounts loaded", problem=problem)
            return None
        else:
            problem = ""
        if problem and problem != self._dir_problem:
            self.log.info("{problem}", problem=problem)
        self._dir_problem = problem
        # our own temporary files start with a dot; so do editors' swap files
        return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))

    def scan(self) -> bool:
        """Read what changed; True (and subscribers told) if the accounts changed."""
        directory = self.path
        changed = False
        if directory != self._dir:
            if self._dir is not None:
                self.log.info("auth-dir is now {path}", path=directory)
            changed = bool(self._entries)
            self._dir = directory
            self._entries.clear()
            self._stats.clear()
            self._reported.clear()
        names = self._listing(directory)
        if names is None:
            return False
        now_ns = time.time_ns()
        for name in names:
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._stats.get(name) == key and now_ns - st.st_mtime_ns > _SETTLE_NS:
                continue
            self._stats[name] = key
            changed |= self._load(name, path)
        present = set(names)
        for name in [n for n in self._entries if n not in present]:
            self.log.info("auth file {name} removed: account dropped", name=name)
            del self._entries[name]
            changed = True
        changed |= self.keyfiles.retain(present)
        for table in (self._stats, self._reported):
            for name in [n for n in table if n not in present]:
                del table[name]
        self._warn_unserved()
        if changed:
            for callback in list(self._subscribers):
                try:
                    callback()
                except Exception:
                    self.log.failure("auth-dir subscriber {callback!r} failed", callback=callback)
        return changed

    def _load(self, name: str, path: str) -> bool:
        entry = self._entries.get(name)
        try:
            found = read_auth_file(path)
        except AuthFileError as e:
            keep = "; keeping the version read before" if entry else ""
            self._report(name, f"skipped: {e}{keep}")
            return False
        if entry is not None and entry.digest == found.digest:
            if self._reported.get(name, "").startswith("skipped:"):
                del self._reported[name]
                self.log.info("auth file {name} is readable again", name=name)
            return False  # unchanged content (or our own write)
        kind = found.type
        if not kind:
            self._report(name, "has no `type` field; ignored", "info")
            return self._drop(name)
        if self.keyfiles.handles(kind):
            return self.keyfiles.load(found, self._report) | self._drop(name)
        self.keyfiles.drop(name)
        try:
            spec = spec_for(kind)
        except KeyError:
            self._reported[name] = f"{_UNSERVED}{kind}"  # named in one warning by scan()
            return self._drop(name)
        if self._reported.pop(name, "").startswith("skipped:") and entry is not None:
            self.log.info("auth file {name} is readable again", name=name)
        problem = file_mode_problem(found.mode)
        if problem:
            self._report(name, problem)
        if entry is not None and entry.spec is spec:
            entry.holder.replace_record(found.record)
            entry.digest, entry.record = found.digest, dict(found.record)
            self.log.info("auth file {name} changed: reloaded", name=name)
            return True
        self._entries[name] = self._new_entry(name, found, spec)
        self.log.info(
            "auth file {name}: {provider} account {email} loaded",
            name=name,
            provider=spec.routing,
            email=str(found.record.get("email") or "(no email)"),
        )
        return True

    def _warn_unserved(self) -> None:
        """One warning naming every token file of a type no executor serves (when that
        list changes)."""
        unserved = tuple(
            f"{n} ({p.removeprefix(_UNSERVED)})"
            for n, p in sorted(self._reported.items())
            if p.startswith(_UNSERVED)
        )
        if unserved and unserved != self._unserved:
            self.log.warn(
                "auth-dir: token files of types cliproxy does not serve are ignored: {files}",
                files=", ".join(unserved),
            )
        self._unserved = unserved

    def _drop(self, name: str) -> bool:
        return self._entries.pop(name, None) is not None

    def _new_entry(self, name: str, found: AuthFile, spec: ProviderSpec) -> _Entry:
        holder = TokenHolder(
            spec,
            found.record,
            name=name,
            clock=self.clock,
            endpoints=self._endpoints,
            persist=self.save,
            reread=lambda: self._reread(name),
            lock=(lambda: self._lock(name)) if self._shared or self._refresh_lock else None,
        )
        return _Entry(name, found.path, found.digest, dict(found.record), spec, holder)

    def _lock(self, name: str) -> defer.Deferred[Release]:
        """Hold `name`'s lock file; then take what another worker may have written."""
        entry = self._entries.get(name)
        if entry is None:
            return defer.succeed(lambda: None)
        if self._refresh_lock is not None:
            return self._refresh_lock(name, entry.holder)
        path = entry.path

        def held(release: Release) -> Release:
            self._load(name, path)
            return release

        return take_lock(lock_path(path), self.clock).addCallback(held)

    def _reread(self, name: str) -> dict[str, Any] | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        try:
            return read_auth_file(entry.path).record
        except AuthFileError:
            return None

    # -- writing -------------------------------------------------------------------------

    def save(self, holder: TokenHolder) -> bool:
        """Write `holder`'s refreshed token into its file; True if written.

        Raises:
            OSError: the file could not be written (the holder retries later).

        When the file changed on disk since we read it, only the token fields are
        written into what is there now (the user's edits stay), and nothing is written
        when it is damaged or holds a different login (a newer refresh token).
        """
        entry = next((e for e in self._entries.values() if e.holder is holder), None)
        if entry is None:
            return False  # the file was removed meanwhile: do not bring it back
        record = holder.record
        try:
            disk = read_auth_file(entry.path)
        except AuthFileError as e:
            self._report(entry.name, f"not saving the refreshed token: the file {e}")
            return False
        if disk.digest != entry.digest:
            if refresh_token_of(disk.record) != refresh_token_of(entry.record):
                self.log.warn(
                    "auth file {name} holds another login now; not overwriting it",
                    name=entry.name,
                )
                return False
            merged = dict(disk.record)
            merged.update({k: record[k] for k in TOKEN_FIELDS if k in record})
            record = merged
        # an OSError (disk full, permissions) propagates: the holder retries until saved
        digest = write_auth_file(entry.path, record)
        entry.digest, entry.record = digest, dict(record)
        try:
            st = os.stat(entry.path)
            self._stats[entry.name] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            pass
        return True


# -- credentials from one file ---------------------------------------------------------------


def _priority(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(v).strip().lower() for v in value if str(v).strip()))


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    out = []
    for name, v in value.items():
        name, text = str(name).strip(), "" if v is None else str(v).strip()
        if name and text and "\n" not in text and "\r" not in text:
            out.append((name, text))
    return tuple(out)


def _first(record: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    return None


def xai_base_url(record: dict[str, Any], chat_proxy: str) -> tuple[str, bool]:
    """(base URL, through the Grok CLI chat proxy) of an xAI token file, as CLIProxyAPI:
    `using_api: true` (or an `auth_kind` other than oauth) chats with the API at the file's
    `base_url` (default xAI's); otherwise a `base_url` other than the API's is used as it
    is, and the rest chat through the chat proxy (`oauth-endpoints.xai.api-url`)."""
    own = str(record.get("base_url") or "").strip().rstrip("/")
    using_api = record.get("using_api")
    if isinstance(using_api, str):
        using_api = using_api.strip().lower() in ("true", "1", "yes", "on")
    if using_api is None:
        using_api = str(record.get("auth_kind") or "oauth").strip().lower() != "oauth"
    if using_api:
        return own or XAI_BASE_URL, False
    if own and own != XAI_BASE_URL:
        return own, False
    return chat_proxy, True


def _api_url(spec: ProviderSpec, endpoints: OAuthEndpoints) -> str:
    ep = spec.endpoints(endpoints)
    if isinstance(ep, GeminiEndpoints):
        return ep.code_assist_url
    return ep.api_url


def _credentials(
    entry: _Entry, endpoints: OAuthEndpoints, report: Callable[[str, str], None]
) -> Iterable[Credential]:
    record, spec = entry.record, entry.spec
    prefix = str(record.get("prefix") or "").strip().strip("/")
    if "/" in prefix:
        report(entry.name, f"prefix {prefix!r} must be one name without '/'; ignored")
        prefix = ""
    proxy = str(_first(record, "proxy_url", "proxy-url") or "").strip()
    if proxy.lower() in ("direct", "none"):
        proxy = "direct"
    options: dict[str, object] = {HOLDER_OPTION: entry.holder}
    email = str(record.get("email") or "")
    if email:
        options["email"] = email
    retry = _first(record, "request_retry", "request-retry")
    if isinstance(retry, int) and not isinstance(retry, bool):
        options["request-retry"] = retry
    if _truthy(record.get("websockets")):
        options["websockets"] = True
    if spec.file_type == "codex":
        ident = codex_identity(str(record.get("id_token") or ""))
        plan = str(record.get("plan_type") or ident["plan_type"] or "")
        if plan:
            options["plan_type"] = plan
        account = str(record.get("account_id") or ident["account_id"] or "")
        if account:
            options["account_id"] = account
    api_url = _api_url(spec, endpoints)
    if spec.file_type == "antigravity":
        own = str(record.get("base_url") or "").strip().rstrip("/")
        fallback = endpoints.antigravity.code_assist_url
        if not own and fallback != api_url:
            options["fallback_base"] = fallback  # the daily host's fallback (production)
        api_url = own or api_url
    elif spec.file_type == "xai":
        api_url, chat_proxy = xai_base_url(record, api_url)
        if chat_proxy:
            options["xai_chat_proxy"] = True
    base = dict(
        provider=spec.routing,
        kind=OAUTH_KIND,
        api_key="",
        base_url=api_url,
        proxy_url=proxy,
        headers=_headers(record.get("headers")),
        prefix=prefix,
        priority=_priority(record.get("priority")),
        excluded_models=_strings(_first(record, "excluded_models", "excluded-models")),
        disabled=_truthy(record.get("disabled")),
        disable_cooling=_truthy(_first(record, "disable_cooling", "disable-cooling")),
    )
    projects = [p.strip() for p in str(record.get("project_id") or "").split(",") if p.strip()]
    if spec.file_type != "gemini" or len(projects) <= 1:
        if projects:
            options["project_id"] = projects[0]
        yield Credential(id=entry.name, options=tuple(sorted(options.items())), **base)  # type: ignore[arg-type]
        return
    # One virtual account per project, sharing the token (core.md §2.2).
    for project in projects:
        opts = dict(options, project_id=project)
        yield Credential(
            id=f"{entry.name}::{project}",
            options=tuple(sorted(opts.items())),
            **base,  # type: ignore[arg-type]
        )


class AuthDirWatcher(Service):
    """Polls the auth-dir and rescans it once changes have settled (debounced).

    A cheap listing + stat fingerprint runs every `interval` seconds; after it changes,
    the rescan waits until it has stayed the same for `debounce` seconds, so a file
    being written (or a burst of files) is read once, whole. A full rescan also runs
    every `rescan_every` polls, to catch a rewrite the stat did not show.
    """

    log = Logger()

    def __init__(
        self,
        authdir: AuthDir,
        clock: IReactorTime,
        *,
        interval: float = 0.5,
        debounce: float = 1.0,
        rescan_every: int = 60,
    ) -> None:
        self.authdir = authdir
        self.clock = clock
        self.interval = interval
        self.debounce = debounce
        self.rescan_every = rescan_every
        self._loop: LoopingCall | None = None
        self._fingerprint: object = None
        self._changed_at: float | None = None
        self._polls = 0

    def startService(self) -> None:
        # Service's own methods are unannotated; called by name so mypy's
        # untyped_calls_exclude for twisted applies (it does not see through super())
        Service.startService(self)
        self._fingerprint = self.fingerprint()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        Service.stopService(self)

    def fingerprint(self) -> object:
        directory = self.authdir.path
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
        except OSError:
            return (directory, None)
        stats = []
        for name in names:
            try:
                st = os.stat(os.path.join(directory, name))
            except OSError:
                continue
            stats.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        return (directory, tuple(stats))

    def _tick(self) -> None:
        try:
            self.poll()
        except Exception:
            self.log.failure("auth-dir watcher check failed; keeping the current accounts")

    def poll(self) -> bool:
        """One tick; True when it rescanned."""
        self._polls += 1
        now = self.clock.seconds()
        fingerprint = self.fingerprint()
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self._changed_at = now
            return False
        if self._changed_at is not None and now - self._changed_at >= self.debounce:
            self._changed_at = None
            self.authdir.scan()
            return True
        if self.rescan_every and self._polls % self.rescan_every == 0:
            self.authdir.scan()
            return True
        return False


def usable(cred: Credential) -> bool:
    """False for an account that needs a new login (its models are not listed)."""
    holder = holder_of(cred)
    return holder is None or not holder.needs_login


def account_proxy(holder: TokenHolder, global_proxy: str) -> str:
    """The proxy for an account's token calls: its file's `proxy_url`, else `proxy-url`."""
    own = str(holder.record.get("proxy_url") or holder.record.get("proxy-url") or "").strip()
    return own or global_proxy


def account_services(
    authdir: AuthDir, http: HTTPRequester, reactor: IReactorTime, config: Callable[[], Config]
) -> list[Service]:
    """The daemon's auth-dir watcher and background token refresher."""
    from cliproxy.credentials.oauth.refresh import DEFAULT_WORKERS, RefreshService

    def workers() -> int:
        value = config().raw.get("auth-auto-refresh-workers")
        return value if isinstance(value, int) and value > 0 else DEFAULT_WORKERS

    watcher = AuthDirWatcher(authdir, reactor)
    Service.setName(watcher, "auth-dir-watcher")
    refresher = RefreshService(
        authdir.holders,
        http,
        reactor,
        proxy_for=lambda h: account_proxy(h, config().proxy_url),
        workers=workers,
    )
    Service.setName(refresher, "token-refresher")
    return [watcher, refresher]
