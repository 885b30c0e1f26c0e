# -*- test-case-name: tests.credentials.test_from_config -*-
"""Credentials from the config's provider key lists (core.md §2.7, §2.8, §5)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cliproxy.config.model import Config, ModelEntry, OpenAICompatEntry, ProviderKeyEntry
from cliproxy.credentials.model import Credential, ModelAlias, stable_id

__all__ = ["KEY_LISTS", "credentials_from_config"]

#: (config list / credential kind, provider key, Config attribute)
KEY_LISTS = (
    ("gemini-api-key", "gemini", "gemini_api_key"),
    ("claude-api-key", "claude", "claude_api_key"),
    ("codex-api-key", "codex", "codex_api_key"),
    ("vertex-api-key", "vertex", "vertex_api_key"),
    ("xai-api-key", "xai", "xai_api_key"),
)
COMPAT_KIND = "openai-compatibility"


def _models(entries: Iterable[ModelEntry]) -> tuple[ModelAlias, ...]:
    return tuple(
        ModelAlias(
            name=m.name,
            alias=m.alias or m.name,
            image=bool(getattr(m, "image", False)),
            thinking_levels=tuple(getattr(m, "thinking_levels", ()) or ()),
            input_modalities=tuple(getattr(m, "input_modalities", ()) or ()),
        )
        for m in entries
    )


def credentials_from_config(config: Config) -> list[Credential]:
    """One `Credential` per usable key entry, in config order, with stable ids.

    Ids are `<kind>:<sha256(kind, key, base-url, proxy-url)[:12]>` (openai-compatibility
    also hashes the provider name, so two providers sharing a gateway and key stay apart):
    an unchanged entry keeps its id, and so its cooldowns, across reloads. Entries
    without a key or base-url are skipped (config loading already warned about them);
    a disabled openai-compatibility provider yields disabled credentials so that
    errors can say why its models are unavailable.
    """
    out: list[Credential] = []
    seen: set[str] = set()

    def add(cred: Credential) -> None:
        if cred.id not in seen:
            seen.add(cred.id)
            out.append(cred)

    for kind, provider, attr in KEY_LISTS:
        entries: Iterable[ProviderKeyEntry] = getattr(config, attr, ()) or ()
        _key_list_credentials(kind, provider, entries, add)
    compat: Iterable[OpenAICompatEntry] = getattr(config, "openai_compatibility", ()) or ()
    for entry in compat:
        _compat_credentials(entry, add)
    return out


def _key_list_credentials(
    kind: str, provider: str, entries: Iterable[ProviderKeyEntry], add: Callable[[Credential], None]
) -> None:
    for entry in entries:
        base_url = (entry.base_url or "").rstrip("/")
        if not entry.api_key or not base_url:
            continue
        options = dict(entry.options)
        if getattr(entry, "websockets", False):
            options["websockets"] = True
        add(
            Credential(
                id=stable_id(kind, entry.api_key, base_url, entry.proxy_url),
                provider=provider,
                kind=kind,
                api_key=entry.api_key,
                base_url=base_url,
                proxy_url=entry.proxy_url,
                headers=tuple(entry.headers),
                prefix=entry.prefix,
                priority=entry.priority,
                models=_models(entry.models),
                excluded_models=tuple(entry.excluded_models),
                disable_cooling=entry.disable_cooling,
                options=tuple(sorted(options.items())),
            )
        )


def _compat_credentials(compat: OpenAICompatEntry, add: Callable[[Credential], None]) -> None:
    base_url = (compat.base_url or "").rstrip("/")
    if not base_url:
        return
    provider = compat.name.lower()
    # A provider without keys still gets one key-less credential (a local gateway).
    keys = [(k.api_key, k.proxy_url) for k in compat.api_key_entries] or [("", "")]
    for api_key, proxy_url in keys:
        add(
            Credential(
                id=stable_id(COMPAT_KIND, provider, api_key, base_url, proxy_url),
                provider=provider,
                kind=COMPAT_KIND,
                api_key=api_key,
                base_url=base_url,
                proxy_url=proxy_url,
                headers=tuple(compat.headers),
                prefix=compat.prefix,
                priority=compat.priority,
                models=_models(compat.models),
                disabled=compat.disabled,
                disable_cooling=compat.disable_cooling,
                options=tuple(sorted(dict(compat.options).items())),
            )
        )
