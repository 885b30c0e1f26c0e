# -*- test-case-name: tests.amp.test_secrets -*-
"""The key cliproxy sends to the Amp upstream.

Precedence: `upstream-api-key` in config > `AMP_API_KEY` in cliproxy's environment >
the key `amp login` stores in `~/.local/share/amp/secrets.json`. Only the file is cached
(5 minutes): config and environment are cheap and read on every call. A per-client
mapping (`upstream-api-keys`) sends a client's own upstream key instead.

Key values are never logged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.logger import Logger

log = Logger()

#: where `amp login` keeps its key
SECRETS_PATH = "~/.local/share/amp/secrets.json"
#: the entry in that file
SECRETS_FILE_KEY = "apiKey@https://ampcode.com/"
ENV_NAME = "AMP_API_KEY"
DEFAULT_TTL = 300.0
DUPLICATE_WARNING = (
    "amp upstream-api-keys: client API key appears in multiple entries; using first mapping."
)


class AmpSecretError(Exception):
    """The secrets file exists but cannot be used (unreadable, not JSON, wrong shape)."""


class StaticSecret:
    """A fixed key (whitespace trimmed)."""

    def __init__(self, key: str) -> None:
        self.key = (key or "").strip()

    def get(self, client_key: str | None = None) -> str:
        return self.key


class FileSecret:
    """The key in Amp's secrets file, cached for `ttl` seconds (a missing file too).

    Safe to call from several threads at once.
    """

    def __init__(
        self,
        path: str = SECRETS_PATH,
        ttl: float = DEFAULT_TTL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.path.expanduser(path)
        self.ttl = ttl
        self._now = now
        self._lock = threading.Lock()
        #: (value, expires_at) or None
        self.cache: tuple[str, float] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self.cache = None

    def get(self, client_key: str | None = None) -> str:
        """The file's key, `""` when the file or the entry is missing.

        Raises:
            AmpSecretError: the file cannot be read or parsed (the empty result is
                cached, so a broken file is not re-read on every request).
        """
        with self._lock:
            cached = self.cache
            if cached is not None and self._now() < cached[1]:
                return cached[0]
            try:
                value = self._read()
            except AmpSecretError:
                self.cache = ("", self._now() + self.ttl)
                raise
            self.cache = (value, self._now() + self.ttl)
            return value

    def _read(self) -> str:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return ""
        except OSError as e:
            raise AmpSecretError(f"cannot read {self.path}: {e.strerror or e}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise AmpSecretError(f"{self.path} is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise AmpSecretError(f"{self.path} is not a JSON object")
        value = data.get(SECRETS_FILE_KEY)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise AmpSecretError(f"{self.path}: {SECRETS_FILE_KEY!r} is not a string")
        return value.strip()


class MultiSourceSecret:
    """config key > `AMP_API_KEY` > secrets file."""

    def __init__(
        self,
        explicit: str = "",
        *,
        environ: Mapping[str, str] | None = None,
        file: FileSecret | None = None,
    ) -> None:
        self.explicit = (explicit or "").strip()
        self._environ = environ
        self.file = file if file is not None else FileSecret()

    def update_explicit(self, key: str) -> None:
        """A new config key; the file's cached value is dropped too."""
        self.explicit = (key or "").strip()
        self.file.invalidate()

    def get(self, client_key: str | None = None) -> str:
        if self.explicit:
            return self.explicit
        environ = os.environ if self._environ is None else self._environ
        env = (environ.get(ENV_NAME) or "").strip()
        if env:
            return env
        return self.file.get()

    def source_of_current(self) -> str:
        """Which source would answer now (for logs): config, env, file or none."""
        if self.explicit:
            return "config"
        environ = os.environ if self._environ is None else self._environ
        if (environ.get(ENV_NAME) or "").strip():
            return "env"
        return "file"


def build_lookup(entries: Iterable[Any]) -> dict[str, str]:
    """client key -> upstream key from `upstream-api-keys` entries (first mapping wins).

    Entries are `(upstream_api_key, api_keys)` pairs (`AmpUpstreamKey` or tuples).
    Blank upstream keys and blank client keys are skipped; everything is trimmed.
    """
    lookup: dict[str, str] = {}
    warned = False
    for upstream, clients in entries:
        upstream = (upstream or "").strip()
        if not upstream:
            continue
        seen_here: set[str] = set()
        for client in clients or ():
            client = (client or "").strip()
            if not client or client in seen_here:
                continue
            seen_here.add(client)
            if client in lookup:
                if not warned:
                    # the key itself stays out of the log
                    log.warn(DUPLICATE_WARNING)
                    warned = True
                continue
            lookup[client] = upstream
    return lookup


class MappedSecret:
    """Per-client upstream keys in front of a default source."""

    def __init__(self, default: Any, entries: Iterable[Any] = ()) -> None:
        self.default = default
        self.lookup = build_lookup(entries)

    def update_mappings(self, entries: Iterable[Any]) -> None:
        self.lookup = build_lookup(entries)

    def get(self, client_key: str | None = None) -> str:
        if client_key:
            upstream = self.lookup.get(client_key)
            if upstream:
                return upstream
        key: str = self.default.get(client_key)
        return key
