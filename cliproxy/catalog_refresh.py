# -*- test-case-name: tests.test_catalog_refresh -*-
"""Keeps the model catalog current: fetches CLIProxyAPI's `models.json` at start and every
`model-catalog.refresh-interval` (3 h by default), as CLIProxyAPI does (core.md §2.9).

A document is used only when it is whole and valid (`remote_catalog`): HTML, truncated
JSON, a non-object, or an entry with a negative limit is logged with the URL and the
problem, and the catalog in use stays. Only a change of some section's list rebuilds the
registry; the shipped catalog is the fallback for sections the document lacks.
`model-catalog: {enabled: false}` turns it off (checked at every tick, so a reload
applies without a restart), and so does the environment variable `CLIPROXY_LOCAL_MODEL=1`
(CLIProxyAPI's `--local-model`; the test suite sets it so no test reaches the internet).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from cliproxy.catalog import Catalog
from cliproxy.config import Config
from cliproxy.credentials.net import HTTPRequester
from cliproxy.registry.remote_catalog import (
    CatalogDocumentError,
    catalog_from_document,
    changed_sections,
)
from cliproxy.upstream.body import read_body

__all__ = ["CatalogRefresher"]

#: seconds to wait for the catalog's response headers (CLIProxyAPI: 30 s for the whole fetch)
FETCH_TIMEOUT = 30.0
#: a catalog document larger than this is refused
MAX_DOCUMENT = 8 * 1024 * 1024


class CatalogRefresher(Service):
    """Refreshes `catalog.models` from the configured URL on a timer.

    Args:
        catalog: the live catalog (its `replace_models` swaps the registry).
        http: the upstream HTTP client (the global proxy applies).
        clock: timer for the refresh interval.
        config: the live config.
    """

    log = Logger()

    def __init__(
        self,
        catalog: Catalog,
        http: HTTPRequester,
        clock: IReactorTime,
        config: Callable[[], Config],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self._environ = os.environ if environ is None else environ
        self.http = http
        self.clock = clock
        self._config = config
        self._timer: IDelayedCall | None = None
        self._running: defer.Deferred[bool] | None = None
        self.refreshes = 0

    def startService(self) -> None:
        Service.startService(self)
        self._tick()

    def stopService(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._running is not None:
            self._running.cancel()
        Service.stopService(self)

    def _tick(self) -> None:
        self._timer = None
        settings = self._config().model_catalog
        local = self._environ.get("CLIPROXY_LOCAL_MODEL", "").strip().lower() in ("1", "true")
        if settings.enabled and not local and self._running is None:
            self._running = defer.ensureDeferred(self.refresh())
            self._running.addBoth(self._done)
        if self.running:
            self._timer = self.clock.callLater(settings.refresh_interval, self._tick)

    def _done(self, result: object) -> None:
        self._running = None

    async def refresh(self) -> bool:
        """Fetch and apply the document once; True when the catalog changed."""
        url = self._config().model_catalog.url
        try:
            doc = await self._fetch(url)
            new = catalog_from_document(doc, self.catalog.models)
        except defer.CancelledError:
            raise
        except CatalogDocumentError as e:
            self.log.warn("model catalog {url} not used: {problem}", url=url, problem=str(e))
            return False
        except Exception as e:
            self.log.warn(
                "model catalog {url} not fetched: {problem}; keeping the current one",
                url=url,
                problem=str(e) or type(e).__name__,
            )
            return False
        changed = changed_sections(self.catalog.models, new)
        if not changed:
            return False
        self.catalog.replace_models(new)
        self.refreshes += 1
        self.log.info(
            "model catalog refreshed from {url}: {sections} changed",
            url=url,
            sections=", ".join(changed),
        )
        return True

    async def _fetch(self, url: str) -> object:
        response = await self.http.request(
            "GET",
            url,
            headers={"Accept": "application/json"},
            body=b"",
            proxy_url=self._config().proxy_url,
            timeout_headers=FETCH_TIMEOUT,
        )
        data = await read_body(response, MAX_DOCUMENT)
        if response.code != 200:
            raise CatalogDocumentError(f"answered HTTP {response.code}")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            kind = "HTML" if data.lstrip()[:1] == b"<" else "not JSON"
            raise CatalogDocumentError(f"{kind} ({e})") from None
