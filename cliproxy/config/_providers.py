# -*- test-case-name: tests.config.test_config_providers -*-
"""Provider lists: the `*-api-key` entries, `openai-compatibility`, and the OAuth alias maps."""

from __future__ import annotations

import types
from collections.abc import Mapping

from ._fields import Section
from ._yaml import join_key, plain
from .model import (
    CLAUDE_BASE_URL,
    GEMINI_BASE_URL,
    VERTEX_BASE_URL,
    XAI_BASE_URL,
    ModelEntry,
    OAuthModelAlias,
    OpenAICompatEntry,
    OpenAICompatKey,
    ProviderKeyEntry,
)

#: Where each key list sends requests when an entry has no base-url ("" = base-url required).
DEFAULT_BASE_URLS = {
    "gemini-api-key": GEMINI_BASE_URL,
    "claude-api-key": CLAUDE_BASE_URL,
    "codex-api-key": "",
    "vertex-api-key": VERTEX_BASE_URL,
    "xai-api-key": XAI_BASE_URL,
}

#: Per-entry keys of newer CLIProxyAPI configs that we keep (in `options`) but do not act on.
_ENTRY_KEPT: dict[str, tuple[type, ...]] = {
    "weight": (int,),
    "request-retry": (int,),
    "request-scoped-errors": (list,),
    "cloak": (dict,),
    "experimental-cch-signing": (bool,),
    "fingerprint-profile": (str,),
    "rebuild-mid-system-message": (bool,),
    "alpha-search": (bool,),
    "support-prompt-cache-key": (bool,),
}
_MODEL_KEPT: dict[str, tuple[type, ...]] = {
    "display-name": (str,),
    "max-context-length": (int,),
    "is-compat": (bool,),
    "force-mapping": (bool,),
    "output-modalities": (list,),
}

#: Field names read inside list entries, for the conf/config.yaml completeness test.
ENTRY_KEYS = (
    "api-key",
    "base-url",
    "proxy-url",
    "prefix",
    "priority",
    "headers",
    "models",
    "excluded-models",
    "disable-cooling",
    "websockets",
    "name",
    "alias",
    "image",
    "thinking",
    "levels",
    "input-modalities",
    "disabled",
    "api-key-entries",
    "fork",
)


def _kept(sec: Section, table: dict[str, tuple[type, ...]]) -> tuple[tuple[str, object], ...]:
    out = []
    for key, kinds in table.items():
        if key in sec.data:
            value = sec.keep(key, *kinds)
            if value is not None:
                out.append((key, plain(value)))
    return tuple(sorted(out))


def read_models(sec: Section, *, require_alias: bool = False) -> tuple[ModelEntry, ...]:
    """`models: [{name, alias, image, thinking: {levels}, input-modalities}]`; alias defaults
    to name."""
    out = []
    for path, line, item, _ in sec.sequence("models"):
        model = Section.of(sec.ctx, item, path, line)
        name = model.string("name")
        alias = model.string("alias")
        if not name:
            raise model.error("name", "required: the upstream model name")
        if require_alias and not alias:
            raise model.error("alias", "required: the model name clients use")
        image = model.boolean("image", False)
        levels: tuple[str, ...] = ()
        thinking = model.section("thinking")
        if thinking is not None:
            levels = thinking.unique_strings("levels", lower=True)
            thinking.finish()
        modalities = model.unique_strings("input-modalities", lower=True)
        _kept(model, _MODEL_KEPT)
        model.finish()
        out.append(ModelEntry(name, alias or name, image, levels, modalities))
    return tuple(out)


def _key_entry(
    sec: Section, kind: str, global_cooling: bool
) -> tuple[ProviderKeyEntry | None, str]:
    """One `*-api-key` entry, fully validated; None (with why) if it is to be dropped."""
    api_key = sec.string("api-key")
    base_url = sec.url("base-url", DEFAULT_BASE_URLS[kind])
    entry_cooling = sec.optional_boolean("disable-cooling")
    entry = ProviderKeyEntry(
        api_key=api_key,
        base_url=base_url,
        proxy_url=sec.proxy_url(),
        prefix=sec.prefix(),
        priority=sec.integer("priority", 0, minimum=None),
        headers=sec.headers(),
        models=read_models(sec, require_alias=kind == "vertex-api-key"),
        excluded_models=sec.unique_strings("excluded-models", lower=True),
        disable_cooling=global_cooling if entry_cooling is None else entry_cooling,
        websockets=sec.boolean("websockets", False),
        options=_kept(sec, _ENTRY_KEPT),
    )
    sec.finish()
    if not api_key:
        return None, "entry without api-key dropped"
    if not base_url:
        return None, "entry without base-url dropped (codex-api-key needs one)"
    return entry, ""


def read_key_list(
    top: Section, kind: str, global_cooling: bool, legacy: tuple[str, ...] = ()
) -> tuple[ProviderKeyEntry, ...]:
    """A `*-api-key` list; empty or base-less (codex) entries and duplicates dropped, with warnings.

    `legacy` holds bare keys from `generative-language-api-key`, appended as gemini entries.
    """
    out: list[ProviderKeyEntry] = []
    seen: dict[tuple[str, str], str] = {}
    candidates: list[tuple[str, int | None, ProviderKeyEntry | None, str]] = []
    for path, line, item, _ in top.sequence(kind):
        entry, why = _key_entry(Section.of(top.ctx, item, path, line), kind, global_cooling)
        candidates.append((path, line, entry, why))
    for index, key in enumerate(legacy):
        entry = ProviderKeyEntry(
            api_key=key, base_url=GEMINI_BASE_URL, disable_cooling=global_cooling
        )
        path = f"generative-language-api-key[{index}]"
        candidates.append((path, top.line_of("generative-language-api-key"), entry, ""))
    for path, line, entry, why in candidates:
        if entry is None:
            top.ctx.warn(path, line, why)
            continue
        identity = (entry.api_key, entry.base_url)
        if identity in seen:
            top.ctx.warn(path, line, f"same api-key and base-url as {seen[identity]}, dropped")
            continue
        seen[identity] = path
        out.append(entry)
    return tuple(out)


def _compat_keys(sec: Section) -> tuple[OpenAICompatKey, ...]:
    keys: list[OpenAICompatKey] = []
    for path, line, item, _ in sec.sequence("api-key-entries"):
        entry = Section.of(sec.ctx, item, path, line)
        api_key = entry.string("api-key")
        proxy_url = entry.proxy_url()
        entry.keep("weight", int)
        entry.finish()
        if api_key:
            keys.append(OpenAICompatKey(api_key, proxy_url))
        else:
            sec.ctx.warn(path, line, "entry without api-key dropped")
    # Older CLIProxyAPI configs list bare keys under `api-keys`.
    keys.extend(OpenAICompatKey(bare) for bare in sec.strings("api-keys"))
    unique: dict[str, OpenAICompatKey] = {}
    for entry_key in keys:
        unique.setdefault(entry_key.api_key, entry_key)
    return tuple(unique.values())


def read_openai_compat(top: Section, global_cooling: bool) -> tuple[OpenAICompatEntry, ...]:
    """`openai-compatibility`: each entry needs a name and an http(s) base-url."""
    out = []
    for path, line, item, _ in top.sequence("openai-compatibility"):
        sec = Section.of(top.ctx, item, path, line)
        name = sec.string("name")
        if not name:
            raise sec.error("name", "required: the provider name clients and logs see")
        base_url = sec.url("base-url")
        if not base_url:
            raise sec.error("base-url", "required: the provider's API base URL")
        cooling = sec.optional_boolean("disable-cooling")
        out.append(
            OpenAICompatEntry(
                name=name,
                base_url=base_url,
                prefix=sec.prefix(),
                priority=sec.integer("priority", 0, minimum=None),
                disabled=sec.boolean("disabled", False),
                headers=sec.headers(),
                disable_cooling=global_cooling if cooling is None else cooling,
                api_key_entries=_compat_keys(sec),
                models=read_models(sec),
                options=_kept(sec, _ENTRY_KEPT),
            )
        )
        sec.finish()
    return tuple(out)


def read_oauth_model_alias(top: Section) -> Mapping[str, tuple[OAuthModelAlias, ...]]:
    """`oauth-model-alias: {channel: [{name, alias, fork}]}`; name == alias and repeats dropped."""
    sec = top.section("oauth-model-alias")
    if sec is None:
        return types.MappingProxyType({})
    out: dict[str, tuple[OAuthModelAlias, ...]] = {}
    for channel in list(sec.data):
        channel_path = join_key(sec.path, channel)
        entries: list[OAuthModelAlias] = []
        aliases: set[str] = set()
        for path, line, item, _ in sec.sequence(channel):
            entry = Section.of(sec.ctx, item, path, line)
            name, alias = entry.string("name"), entry.string("alias")
            fork = entry.boolean("fork", False)
            _kept(entry, {"display-name": (str,), "force-mapping": (bool,)})
            entry.finish()
            if not name or not alias:
                sec.ctx.warn(path, line, "entry needs both name and alias, dropped")
            elif name.lower() == alias.lower():
                sec.ctx.warn(path, line, "alias equals name, dropped")
            elif alias.lower() in aliases:
                sec.ctx.warn(path, line, f"alias {alias!r} repeats an earlier entry, dropped")
            else:
                aliases.add(alias.lower())
                entries.append(OAuthModelAlias(name, alias, fork))
        key = str(channel).strip().lower()
        if not key:
            sec.ctx.warn(channel_path, sec.line_of(channel), "empty channel name, dropped")
            continue
        out[key] = out.get(key, ()) + tuple(entries)
    return types.MappingProxyType(out)


def read_oauth_excluded(top: Section) -> Mapping[str, tuple[str, ...]]:
    """`oauth-excluded-models: {provider: [patterns]}`; names and patterns lowercased."""
    sec = top.section("oauth-excluded-models")
    if sec is None:
        return types.MappingProxyType({})
    out: dict[str, tuple[str, ...]] = {}
    for provider in list(sec.data):
        patterns = sec.unique_strings(provider, lower=True)
        key = str(provider).strip().lower()
        merged = dict.fromkeys(out.get(key, ()) + patterns)
        out[key] = tuple(merged)
    return types.MappingProxyType(out)


def read_legacy_gemini(top: Section) -> tuple[str, ...]:
    """`generative-language-api-key: [keys]` from CLIProxyAPI v6 configs."""
    return tuple(dict.fromkeys(top.strings("generative-language-api-key")))
