# -*- test-case-name: tests.management.test_panel_fetch -*-
"""The official Management Center panel, fetched on demand as CLIProxyAPI does.

`remote-management.panel-github-repository` names the panel's repository
(`https://github.com/<owner>/<repo>`, or its `https://api.github.com/repos/...` address).
Its latest release is read (`GET .../releases/latest`), the asset named `management.html`
downloaded, checked against the release's `sha256:` digest when it gives one, and
written atomically into the static directory (`MANAGEMENT_STATIC_PATH`, else
`$WRITABLE_PATH/static`, else `static/` beside config.yaml). Any other http(s) URL is
taken as the release document's own address (a mirror of the GitHub API answer).

It runs when `/management.html` is asked for and the file is missing, and again when the
last check is `RECHECK_SECONDS` old (CLIProxyAPI's updater interval); attempts are at
least `MIN_INTERVAL` apart and concurrent requests share one. A failure keeps whatever
file there was. Unlike CLIProxyAPI there is no unverified fallback download.
`disable-auto-update-panel: true` means no network call at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.config import Config
from cliproxy.credentials.net import HTTPRequester
from cliproxy.management.writer import write_atomically
from cliproxy.upstream.body import read_body

log = Logger()

ASSET = "management.html"
DEFAULT_RELEASE_URL = (
    "https://api.github.com/repos/router-for-me/Cli-Proxy-API-Management-Center/releases/latest"
)
USER_AGENT = "CLIProxyAPI-management-updater"
#: seconds between two attempts, at least
MIN_INTERVAL = 30.0
#: seconds after which a present file is checked for a newer release
RECHECK_SECONDS = 3 * 3600.0
#: seconds for each of the two requests (CLIProxyAPI's client timeout)
TIMEOUT = 15.0
#: the release document and the asset are read up to these sizes
MAX_RELEASE_BYTES = 4 * 1024 * 1024
MAX_ASSET_BYTES = 16 * 1024 * 1024


class PanelFetchError(Exception):
    """Why the panel could not be fetched (for the log; it names no secret)."""


def release_url(repository: str) -> str:
    """The release document's address for `panel-github-repository`."""
    repo = repository.strip()
    parts = urlsplit(repo)
    if not repo or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return DEFAULT_RELEASE_URL
    host = parts.hostname.lower()
    path = parts.path.rstrip("/")
    if host == "api.github.com":
        if not path.lower().endswith("/releases/latest"):
            path += "/releases/latest"
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    if host == "github.com":
        segments = [s for s in path.split("/") if s]
        if len(segments) >= 2:
            name = segments[1].removesuffix(".git")
            return f"https://api.github.com/repos/{segments[0]}/{name}/releases/latest"
        return DEFAULT_RELEASE_URL
    return repo


def static_dir(config_path: str, environ: dict[str, str] | None = None) -> str:
    """Where the panel file is kept (CLIProxyAPI's `managementasset.StaticDir`)."""
    env = environ or {}
    override = env.get("MANAGEMENT_STATIC_PATH", "").strip()
    if override:
        cleaned = os.path.normpath(os.path.expanduser(override))
        if os.path.basename(cleaned).lower() == ASSET:
            return os.path.dirname(cleaned)
        return cleaned
    writable = env.get("WRITABLE_PATH", "").strip()
    if writable:
        return os.path.join(os.path.expanduser(writable), "static")
    base = os.path.dirname(os.path.abspath(os.path.expanduser(config_path or "config.yaml")))
    return os.path.join(base, "static")


def _digest(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return text.split(":", 1)[-1].strip().lower()


def _sha256_of(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(MAX_ASSET_BYTES + 1)).hexdigest()
    except OSError:
        return ""


class PanelFetcher:
    """Keeps the panel file at `path` current from the configured release.

    Args:
        config: the live config (`panel-github-repository`, `proxy-url`).
        http: the HTTP client.
        clock: for throttling and timeouts.
    """

    def __init__(
        self, config: Callable[[], Config], http: HTTPRequester, clock: IReactorTime
    ) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self._last_attempt: float | None = None
        self._inflight: defer.Deferred[None] | None = None

    def due(self, path: str) -> bool:
        """Whether a request for the page should check the release first."""
        if self._inflight is not None:
            return True
        now = self.clock.seconds()
        if self._last_attempt is not None and now - self._last_attempt < MIN_INTERVAL:
            return False
        if not os.path.isfile(path):
            return True
        return self._last_attempt is None or now - self._last_attempt >= RECHECK_SECONDS

    def ensure(self, path: str) -> defer.Deferred[None]:
        """Check the release and update `path`; never fails (problems are logged).

        Concurrent callers share one check; cancelling a caller's Deferred leaves it running.
        """
        work = self._inflight
        if work is None:
            self._last_attempt = self.clock.seconds()
            work = defer.ensureDeferred(self._update(path))
            timer = self.clock.callLater(2 * TIMEOUT, work.cancel)
            self._inflight = work

            def settle(result: object) -> None:
                if timer.active():
                    timer.cancel()
                self._inflight = None
                if isinstance(result, Failure):
                    reason = result.value
                    why = str(reason) if isinstance(reason, PanelFetchError) else type(reason)
                    log.warn("could not fetch the management panel: {reason}", reason=why)

            work.addBoth(settle)
        waiter: defer.Deferred[None] = defer.Deferred()
        work.addBoth(lambda _: None if waiter.called else waiter.callback(None))
        return waiter

    async def _get(self, url: str, headers: dict[str, str], limit: int) -> bytes:
        proxy = str(self.config().proxy_url or "")
        try:
            response = await self.http.request(
                "GET", url, headers=headers, proxy_url=proxy, timeout_headers=TIMEOUT
            )
        except defer.CancelledError:
            raise
        except Exception as e:
            raise PanelFetchError(f"{urlsplit(url).hostname} unreachable ({type(e).__name__})")
        try:
            body = await read_body(response, limit)
        except defer.CancelledError:
            raise
        except Exception as e:
            raise PanelFetchError(f"unreadable answer ({type(e).__name__})")
        if response.code != 200:
            raise PanelFetchError(f"{urlsplit(url).hostname} answered {response.code}")
        return body

    async def _update(self, path: str) -> None:
        config = self.config()
        source = release_url(config.remote_management.panel_github_repository)
        raw = await self._get(
            source,
            {"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT},
            MAX_RELEASE_BYTES,
        )
        try:
            release = json.loads(raw)
            assets = release["assets"]
            [asset] = [a for a in assets if str(a.get("name", "")).lower() == ASSET][:1]
            download = asset["browser_download_url"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PanelFetchError(f"the latest release has no {ASSET} asset") from None
        if not isinstance(download, str) or urlsplit(download).scheme not in ("http", "https"):
            raise PanelFetchError(f"the release's {ASSET} has no usable download address")
        expected = _digest(asset.get("digest"))
        if expected and expected == _sha256_of(path):
            log.debug("the management panel is up to date")
            return
        data = await self._get(download, {"User-Agent": USER_AGENT}, MAX_ASSET_BYTES)
        got = hashlib.sha256(data).hexdigest()
        if expected and got != expected:
            raise PanelFetchError(f"digest mismatch (expected {expected}, got {got}); not updated")
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        write_atomically(path, data)
        log.info("management panel updated ({path}, sha256 {hash})", path=path, hash=got)


__all__ = ["PanelFetcher", "release_url", "static_dir"]
