# -*- test-case-name: tests.test_serving -*-
"""The live model catalog: one immutable `ModelRegistry` snapshot, rebuilt and swapped when
the config or the auth-dir changes, and the model listings built from it.
"""

from __future__ import annotations

from twisted.logger import Logger

from cliproxy.config import Config
from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.authdir import AuthDir, usable
from cliproxy.credentials.from_config import credentials_from_config
from cliproxy.credentials.model import Credential
from cliproxy.credentials.pool import CredentialPool
from cliproxy.formats import Family
from cliproxy.registry import GeminiModel, ModelList, ModelRegistry
from cliproxy.registry.catalog import ModelSpecs, load_catalog

log = Logger()


class Catalog:
    """Which credentials serve which models, now.

    `registry` is replaced whole (never edited) when the config is reloaded or a token
    file changes, so a request that read it keeps a consistent view.
    """

    def __init__(self, store: ConfigStore, authdir: AuthDir, pool: CredentialPool) -> None:
        self.store = store
        self.authdir = authdir
        self.pool = pool
        #: the model catalog in use: the shipped one until a refresh replaces it
        self.models: ModelSpecs = load_catalog()
        self._registry = self._build(store.current)
        store.subscribe(self._config_changed)
        authdir.subscribe(self._accounts_changed)

    @property
    def registry(self) -> ModelRegistry:
        return self._registry

    def _build(self, config: Config) -> ModelRegistry:
        creds = credentials_from_config(config)
        creds += self.authdir.credentials(config.oauth_endpoints)
        return ModelRegistry.from_config(config, creds, self.models)

    def replace_models(self, models: ModelSpecs) -> None:
        """A refreshed model catalog: rebuild the registry with it (cliproxy.catalog_refresh)."""
        self.models = models
        self._swap(self._build(self.store.current))

    def _swap(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self.pool.retain(c.id for c in registry.credentials)

    def _accounts_changed(self) -> None:
        self._swap(self._build(self.store.current))

    def _config_changed(self, old: Config, new: Config) -> None:
        self.authdir.scan()  # auth-dir itself may have moved
        registry = self._build(new)
        self._swap(registry)
        log.info(
            "config reloaded: {n} credential(s), {m} model(s)",
            n=len(registry.credentials),
            m=len(registry.list_models()),
        )

    # -- listings ------------------------------------------------------------------------

    def _listable(self, cred: Credential, model: str) -> bool:
        # an account that needs a new login serves nothing until it has one
        return self.pool.listable(cred, model) and usable(cred)

    def model_list(self, family: Family) -> ModelList:
        if family is Family.CLAUDE:
            return self._registry.claude_model_list(self._listable)
        if family is Family.GEMINI:
            return self._registry.gemini_model_list(self._listable)
        return self._registry.openai_model_list(self._listable)

    def gemini_model(self, model_id: str) -> GeminiModel | None:
        return self._registry.gemini_model(model_id)
