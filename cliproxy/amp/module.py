# -*- test-case-name: tests.amp.test_module -*-
"""`AmpModule`: the Amp integration's live state (mounted by `cliproxy.amp.routes`).

Everything follows the config snapshot: the upstream URL (added, changed, removed),
the keys, the per-client key mapping, the localhost restriction, the model mappings,
`force-model-mappings` and `fallback`. The module is notified only when the `ampcode`
section changed, applies just what changed, and logs each change without secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.logger import Logger

from cliproxy.amp.diff import amp_changes, upstream_keys_changed
from cliproxy.amp.fallback import AmpFallback
from cliproxy.amp.gateway import AmpGateway
from cliproxy.amp.mapping import ModelMapper
from cliproxy.amp.secrets import (
    DEFAULT_TTL,
    SECRETS_PATH,
    AmpSecretError,
    FileSecret,
    MappedSecret,
    MultiSourceSecret,
)
from cliproxy.amp.stats import AmpStats
from cliproxy.amp.upstream import AmpProxy
from cliproxy.config import Config
from cliproxy.config.model import AmpConfig
from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.net import IClientReactor
from cliproxy.credentials.pool import SelectionError
from cliproxy.registry import ModelRegistry
from cliproxy.upstream.http import UpstreamHTTP
from cliproxy.usage import UsageBook
from cliproxy.web.endpoints import Backend
from cliproxy.web.models import ModelLists

log = Logger()


@dataclass(frozen=True)
class AmpCore:
    """What the Amp integration uses from the rest of cliproxy, passed in whole.

    Attributes:
        store: the live config.
        registry: the current model registry (for "is there a local provider?").
        catalog: model listings for the provider routes.
        backend: the inference endpoints' router, config and clock.
        http: the upstream HTTP client (the Amp reverse proxy's pool).
        usage: where calls forwarded to the Amp upstream are recorded.
        reactor: the reactor (timers, and TCP/TLS connects for the WebSocket gateway).
    """

    store: ConfigStore
    registry: Callable[[], ModelRegistry]
    catalog: ModelLists
    backend: Backend
    http: UpstreamHTTP
    usage: UsageBook
    reactor: IClientReactor

    @property
    def config(self) -> Config:
        return self.store.current


class AmpConfigError(ValueError):
    """The Amp settings cannot be used (an upstream URL that is not http(s))."""


def check_upstream_url(url: str) -> str:
    """The URL without a trailing `/`, or "" for none.

    Raises:
        AmpConfigError: not an absolute http(s) URL.
    """
    url = (url or "").strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as e:
        raise AmpConfigError(f"invalid amp upstream url {url!r}: {e}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise AmpConfigError(f"invalid amp upstream url {url!r}: need http(s)://host")
    return url.rstrip("/")


class AmpModule:
    """The Amp routes' shared state.

    Args:
        core: what the module uses from the rest of cliproxy.
        environ: environment for `AMP_API_KEY` and proxy variables (None: os.environ).
        secrets_path: Amp's secrets file.
        secrets_ttl: seconds the file's key is cached.
        tls_policy: `IPolicyForHTTPS` for the WebSocket gateway (None: the platform CAs).
    """

    name = "amp-routing"

    def __init__(
        self,
        core: AmpCore,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_path: str = SECRETS_PATH,
        secrets_ttl: float = DEFAULT_TTL,
        tls_policy: Any = None,
    ) -> None:
        self.core = core
        self.environ = environ
        self.tls_policy = tls_policy
        self.stats = AmpStats()
        self.reloads = 0
        self.settings = AmpConfig()
        self.upstream_url = ""
        self.file_secret = FileSecret(secrets_path, secrets_ttl, now=core.reactor.seconds)
        self.secrets = MappedSecret(
            MultiSourceSecret("", environ=environ, file=self.file_secret), ()
        )
        self.mapper = ModelMapper((), has_provider=self.has_provider)
        self.proxy: AmpProxy = AmpProxy(self)
        self.gateway: AmpGateway = AmpGateway(self)
        self.fallback: AmpFallback = AmpFallback(self)
        self._unsubscribe: Callable[[], None] | None = None

    # -- configuration -------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the Amp upstream is configured (management routes and fallback)."""
        return bool(self.upstream_url)

    def register(self, settings: AmpConfig) -> None:
        """First configuration.

        Raises:
            AmpConfigError: the upstream URL is unusable.
        """
        url = check_upstream_url(settings.upstream_url)
        self.settings = settings
        self.upstream_url = url
        self.secrets.default.update_explicit(settings.upstream_api_key)
        self.secrets.update_mappings(settings.upstream_api_keys)
        self.mapper.update(settings.model_mappings)
        if url:
            log.info("amp upstream proxy enabled for {url}", url=url)
        else:
            log.info("amp upstream not configured: provider routes only")

    def subscribe(self, store: ConfigStore) -> None:
        self._unsubscribe = store.subscribe(self.config_changed)

    def config_changed(self, old: Config, new: Config) -> None:
        """ConfigStore subscriber: acts only when `ampcode` changed."""
        if old.ampcode == new.ampcode:
            return
        self.reconfigure(new.ampcode)

    def reconfigure(self, new: AmpConfig) -> None:
        """Apply a changed `ampcode` section (only the parts that changed)."""
        self.reloads += 1
        old = self.settings
        for line in amp_changes(old, new):
            log.info("config: {change}", change=line)
        try:
            url = check_upstream_url(new.upstream_url)
        except AmpConfigError as e:
            log.error("{error}; keeping {url!r}", error=str(e), url=self.upstream_url)
            url = self.upstream_url
        if url != self.upstream_url:
            if not url:
                log.info("amp upstream proxy disabled")
            else:
                log.info("amp upstream proxy now {url}", url=url)
            self.upstream_url = url
        if old.upstream_api_key.strip() != new.upstream_api_key.strip():
            update = getattr(self.secrets.default, "update_explicit", None)
            if update is not None:  # a fixed source (tests, embedders) stays as it is
                update(new.upstream_api_key)
            self.file_secret.invalidate()
        if upstream_keys_changed(old.upstream_api_keys, new.upstream_api_keys):
            self.secrets.update_mappings(new.upstream_api_keys)
        if old.model_mappings != new.model_mappings:
            self.mapper.update(new.model_mappings)
        self.settings = new

    # -- lookups -------------------------------------------------------------------------

    def provider_of(self, model: str) -> str:
        """The first local provider serving `model` (suffix allowed), or ""."""
        try:
            resolution = self.core.registry().resolve(model)
        except (SelectionError, LookupError, ValueError):
            return ""
        if not resolution.candidates:
            return ""
        return (
            resolution.providers[0] if resolution.providers else resolution.candidates[0].provider
        )

    def has_provider(self, model: str) -> bool:
        return bool(self.provider_of(model))

    def upstream_secret(self, client_key: str | None) -> str:
        """The key for the Amp upstream; "" (and a warning) when the source fails."""
        try:
            return self.secrets.get(client_key)
        except AmpSecretError as e:
            log.warn("amp secret source error (continuing without auth): {error}", error=str(e))
            return ""
