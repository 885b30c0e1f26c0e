# -*- test-case-name: tests.credentials.test_pool -*-
"""The credential record every room shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """An upstream model `name` offered to clients as `alias` (alias may equal name)."""

    name: str
    alias: str
    #: the model is served on the image endpoints (openai-compatibility `image: true`)
    image: bool = False
    #: thinking levels the upstream accepts (openai-compatibility `thinking.levels`)
    thinking_levels: tuple[str, ...] = ()
    #: what the model reads (openai-compatibility `input-modalities`, lowercased); () = not said
    input_modalities: tuple[str, ...] = ()

    @property
    def text_only(self) -> bool:
        """`input-modalities` names text and not image: images must not be sent to it."""
        mods = {m.strip().lower() for m in self.input_modalities}
        return "text" in mods and "image" not in mods


@dataclass(frozen=True, slots=True)
class Credential:
    """One thing the router can pick: an API key entry or (later) an OAuth account.

    `provider` is the routing key (`claude`, `gemini`, `codex`, `vertex`, `gemini-cli`,
    or an openai-compatibility name lowercased). `kind` is where it came from
    (`claude-api-key`, ..., `openai-compatibility`, `oauth`).
    """

    id: str
    provider: str
    kind: str
    api_key: str = field(repr=False)
    base_url: str
    proxy_url: str = ""  # "" means the global proxy-url; "direct" means none
    headers: tuple[tuple[str, str], ...] = ()
    prefix: str = ""
    priority: int = 0
    models: tuple[ModelAlias, ...] = ()
    excluded_models: tuple[str, ...] = ()
    disabled: bool = False
    disable_cooling: bool = False
    #: free-form per-kind options (e.g. codex `websockets`), as sorted (key, value) pairs
    options: tuple[tuple[str, object], ...] = ()

    @property
    def label(self) -> str:
        """Safe for logs: the id and the key's last 4 characters."""
        return f"{self.id}(…{self.api_key[-4:]})" if self.api_key else self.id

    def option(self, name: str, default: object = None) -> object:
        for k, v in self.options:
            if k == name:
                return v
        return default


def stable_id(kind: str, *parts: str) -> str:
    """`<kind>:<sha256(kind, parts...)[:12]>`: the same entry keeps its id across reloads."""
    h = hashlib.sha256("\0".join((kind, *parts)).encode("utf-8")).hexdigest()[:12]
    return f"{kind}:{h}"
