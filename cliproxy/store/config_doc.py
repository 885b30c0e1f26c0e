# -*- test-case-name: tests.store.test_transfer -*-
"""The config document in the database, once imported (`cliproxy store import`).

The row `config.yaml` of `cliproxy_config` holds the shared part of the config: every key
but the local ones (`LOCAL_KEYS`: where this instance listens, with which TLS files, which
store it uses and where it keeps its copies of the token files). Each instance writes the
shared part into its own config file, keeping its local keys, so the usual config
watcher applies it; a change made here (management API, an edit of the file) is written
back to the row and announced with NOTIFY, and every other instance rewrites its file.

Without that row (nothing imported), the config stays local to each instance.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from cliproxy.config import Config
from cliproxy.config.watcher import ConfigStore
from cliproxy.management.writer import dump_document, load_document, write_atomically
from cliproxy.store.shared import SharedStore

__all__ = ["CHANNEL", "CONFIG_ID", "LOCAL_KEYS", "SharedConfig", "merged_text", "shared_text"]

CHANNEL = "cliproxy_config"
#: the row's id (CLIProxyAPI's pgstore calls its row "config")
CONFIG_ID = "config.yaml"
#: keys always read from the local file, never shared
LOCAL_KEYS = ("host", "port", "listen", "tls", "store", "auth-dir")


def shared_text(text: str) -> str:
    """`text` without its local keys, as YAML (comments kept)."""
    doc = load_document(text)
    for key in LOCAL_KEYS:
        doc.pop(key, None)
    return str(dump_document(doc))


def merged_text(shared: str, local: str) -> str:
    """The shared document with `local`'s local keys first."""
    doc = load_document(shared)
    mine = load_document(local)
    for key in LOCAL_KEYS:
        doc.pop(key, None)
    position = 0
    for key in LOCAL_KEYS:
        if key in mine:
            doc.insert(position, key, mine[key])
            position += 1
    return str(dump_document(doc))


def _read(path: str) -> str:
    with open(path, encoding="utf-8-sig") as f:
        return f.read()


def write_merged(path: str, shared: str) -> bool:
    """Rewrite the config file at `path` with `shared` and its own local keys; True if
    it changed."""
    local = _read(path)
    if shared_text(local) == shared:
        return False
    mode = os.stat(path).st_mode & 0o777
    write_atomically(path, merged_text(shared, local).encode("utf-8"))
    os.chmod(path, mode)
    return True


class SharedConfig:
    """Keeps this instance's config file and the `config.yaml` row in step."""

    log = Logger()

    def __init__(self, store: SharedStore, config: ConfigStore) -> None:
        self.store = store
        self.config = config
        #: the row's content as last seen (None: not imported, nothing is shared)
        self._known: str | None = None
        config.subscribe(self.changed)
        store.listen(CHANNEL, self.heard, self.heard)

    @property
    def path(self) -> str:
        return os.path.expanduser(self.config.current.source_path)

    def changed(self, old: Config, new: Config) -> None:
        """The config was reloaded (file edit, management write): share what changed here."""
        if self._known is None or not self.path:
            return
        try:
            mine = shared_text(_read(self.path))
        except Exception as e:
            self.log.warn("store: config not shared: {e}", e=e)
            return
        if mine == self._known:
            return
        self._known = mine
        sql = (
            "INSERT INTO cliproxy_config (id, content) VALUES (%(id)s, %(c)s) ON CONFLICT (id)"
            " DO UPDATE SET content = EXCLUDED.content, updated_at = now();"
            " SELECT pg_notify('" + CHANNEL + "', %(id)s)"
        )
        d = defer.ensureDeferred(self.store.run(sql, {"id": CONFIG_ID, "c": mine}))
        d.addCallback(lambda _: self.log.info("store: config change shared with the others"))
        d.addErrback(
            lambda f: self.log.warn("store: config change not shared: {e}", e=f.getErrorMessage())
        )

    def heard(self, payload: str = "") -> None:
        """The row changed (or the listener (re)connected): bring the file in line."""
        d = defer.ensureDeferred(
            self.store.query("SELECT content FROM cliproxy_config WHERE id = %s", (CONFIG_ID,))
        )
        d.addCallback(self._apply)
        d.addErrback(
            lambda f: self.log.warn("store: config not re-read: {e}", e=f.getErrorMessage())
        )

    def _apply(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            self._known = None
            return
        content = str(rows[0][0])
        self._known = content
        if not self.path:
            return
        try:
            if write_merged(self.path, content):
                self.log.info("store: config changed elsewhere; {path} rewritten", path=self.path)
        except Exception as e:
            self.log.error("store: the shared config could not be applied: {e}", e=e)
