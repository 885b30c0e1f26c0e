# -*- test-case-name: tests.management.test_config_endpoints -*-
"""Changes to config.yaml that keep the user's comments and key order.

A change is applied to a round-trip YAML document (ruamel.yaml), the new text is validated
with the start-up loader, written atomically (temp file, fsync, rename) and then swapped
into the `ConfigStore`, the same live-reload path a hand edit takes. A change that would
make the config invalid raises `ConfigError` and touches nothing.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from cliproxy.config import Config, ConfigError
from cliproxy.config._parse import build_config
from cliproxy.config.watcher import ConfigStore

Mutation = Callable[[CommentedMap], None]


class InvalidYAML(ValueError):
    """The text is not YAML at all (`400 invalid_yaml`)."""


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load_document(text: str) -> CommentedMap:
    """The round-trip document of `text` (an empty text is an empty mapping).

    Raises:
        InvalidYAML: not YAML, or its top level is not a mapping.
    """
    try:
        doc = _yaml().load(text)
    except YAMLError as e:
        raise InvalidYAML(str(e)) from None
    if doc is None:
        return CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise InvalidYAML("the top level must be a mapping of keys")
    return doc


def dump_document(doc: CommentedMap) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with `data` so a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=".cliproxy-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ConfigWriter:
    """Applies management changes to the config file and the live snapshot.

    Args:
        store: the live config; its `source_path` names the file. A config built from
            text (no file) is changed in memory only.
    """

    def __init__(self, store: ConfigStore) -> None:
        self.store = store
        self._memory: str | None = None

    @property
    def path(self) -> str:
        return os.path.expanduser(self.store.current.source_path)

    def text(self) -> str:
        """The current config text (the file, or the in-memory document)."""
        if self.path:
            with open(self.path, encoding="utf-8-sig") as f:
                return f.read()
        if self._memory is None:
            return dump_document(_plain_to_document(self.store.current.raw))
        return self._memory

    def update(self, mutate: Mutation) -> Config:
        """Apply `mutate` to the document, validate, save and swap it in.

        Raises:
            ConfigError: the result is not a valid config; nothing changed.
            InvalidYAML: the file on disk is no longer YAML.
        """
        doc = load_document(self.text())
        mutate(doc)
        return self.replace_text(dump_document(doc))

    def replace_text(self, text: str) -> Config:
        """Validate `text` with the start-up loader, write it and swap it in.

        Raises:
            InvalidYAML: not YAML (or not a mapping).
            ConfigError: YAML but not a valid config.
        """
        load_document(text)
        path = self.path
        new = build_config(text, path or "<management>", source_path=self.store.current.source_path)
        if path:
            write_atomically(path, text.encode("utf-8"))
        else:
            self._memory = text
        self.store.replace(new)
        return new


def _plain_to_document(raw: Any) -> CommentedMap:
    doc = load_document("")
    if isinstance(raw, dict) or hasattr(raw, "items"):
        for k, v in raw.items():
            doc[k] = v
    return doc


__all__ = ["ConfigError", "ConfigWriter", "InvalidYAML", "dump_document", "load_document"]
