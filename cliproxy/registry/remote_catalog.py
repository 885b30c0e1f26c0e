# -*- test-case-name: tests.test_catalog_refresh -*-
"""CLIProxyAPI's published `models.json` read into `ModelSpecs` over the shipped ones.

The document maps a section name (`claude`, `gemini`, `vertex`, `codex-pro`, `kimi`,
`xai`, ...) to a list of model entries (`id`, `created`, `owned_by`, `display_name`,
`description`, `version`, `context_length`/`inputTokenLimit`,
`max_completion_tokens`/`outputTokenLimit`, `supportedGenerationMethods`, `thinking`).
Every entry is checked before anything is used: one bad entry (a missing id, a negative
limit, a thinking range that is not a number) refuses the whole document, with the
field named, and the current catalog stays. Sections the document lacks keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cliproxy.registry.catalog import ModelSpec, ModelSpecs, ThinkingSpec

__all__ = ["CatalogDocumentError", "catalog_from_document", "changed_sections"]

#: a document with fewer entries than this in all is taken as truncated
MIN_MODELS = 1


class CatalogDocumentError(ValueError):
    """The document is not a usable catalog; the message names the field."""


def _limit(raw: Mapping[str, Any], where: str, *keys: str) -> int | None:
    for key in keys:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CatalogDocumentError(f"{where}.{key}: expected a non-negative number")
        return int(value)
    return None


def _thinking(raw: Any, where: str) -> ThinkingSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise CatalogDocumentError(f"{where}.thinking: expected an object")
    levels = raw.get("levels") or []
    if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
        raise CatalogDocumentError(f"{where}.thinking.levels: expected a list of names")
    return ThinkingSpec(
        min=_limit(raw, f"{where}.thinking", "min"),
        max=_limit(raw, f"{where}.thinking", "max"),
        zero_allowed=bool(raw.get("zero_allowed", False)),
        dynamic_allowed=bool(raw.get("dynamic_allowed", False)),
        levels=tuple(v.lower() for v in levels),
    )


def _entry(raw: Any, where: str, known: ModelSpec | None) -> ModelSpec:
    if not isinstance(raw, Mapping):
        raise CatalogDocumentError(f"{where}: expected an object")
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise CatalogDocumentError(f"{where}.id: expected a model name")
    model_id = model_id.strip().removeprefix("models/")
    created = raw.get("created", known.created if known else 0)
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise CatalogDocumentError(f"{where}.created: expected a unix time")
    methods = raw.get("supportedGenerationMethods") or (list(known.methods) if known else [])
    if not isinstance(methods, list):
        raise CatalogDocumentError(f"{where}.supportedGenerationMethods: expected a list")
    return ModelSpec(
        id=model_id,
        display_name=str(raw.get("display_name") or raw.get("displayName") or model_id),
        created=created,
        owned_by=str(raw.get("owned_by") or (known.owned_by if known else "")),
        description=str(raw.get("description") or ""),
        version=str(raw.get("version") or ""),
        context=_limit(raw, where, "context_length", "inputTokenLimit"),
        output=_limit(raw, where, "max_completion_tokens", "outputTokenLimit"),
        methods=tuple(str(m) for m in methods),
        thinking=_thinking(raw.get("thinking"), where),
        image=known.image if known else "image" in model_id,
    )


def catalog_from_document(doc: Any, base: ModelSpecs) -> ModelSpecs:
    """`base` with every section the document has replaced by the document's.

    Raises:
        CatalogDocumentError: the document (or one entry) is not usable.
    """
    if not isinstance(doc, Mapping):
        raise CatalogDocumentError("expected a JSON object of sections")
    sections: dict[str, tuple[ModelSpec, ...]] = dict(base.sections)
    models: dict[str, ModelSpec] = dict(base.models)
    count = 0
    for name, entries in doc.items():
        where = str(name)
        if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
            raise CatalogDocumentError(f"{where}: expected a list of models")
        specs = []
        for i, raw in enumerate(entries):
            known = base.find(str(raw.get("id", "")), where) if isinstance(raw, Mapping) else None
            spec = _entry(raw, f"{where}[{i}]", known)
            specs.append(spec)
            models.setdefault(spec.id, spec)
        sections[where] = tuple(specs)
        count += len(specs)
    if count < MIN_MODELS:
        raise CatalogDocumentError("lists no models")
    return ModelSpecs(models, sections)


def changed_sections(old: ModelSpecs, new: ModelSpecs) -> list[str]:
    """The section names whose model lists differ."""
    names = set(old.sections) | set(new.sections)
    return sorted(n for n in names if old.sections.get(n) != new.sections.get(n))
