# -*- test-case-name: tests.test_registry -*-
"""The shipped model catalog (`cliproxy/data/models.yaml`): what each built-in provider serves.

`ModelSpecs` holds every model's spec (listing fields, limits, thinking) and, per provider
section, the ordered specs that section lists (a section may override fields of a model).
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from cliproxy.credentials.model import Credential

#: credential kinds the registry treats apart
COMPAT_KIND = "openai-compatibility"
OAUTH_KIND = "oauth"
#: plan_type claim of a Codex login -> catalog section (core.md §2.5)
_CODEX_PLANS = {
    "pro": "codex-pro",
    "plus": "codex-plus",
    "team": "codex-team",
    "business": "codex-team",
    "go": "codex-team",
    "free": "codex-free",
}


@dataclass(frozen=True, slots=True)
class ThinkingSpec:
    """What a model accepts for thinking: a budget range and/or effort levels."""

    min: int | None = None
    max: int | None = None
    zero_allowed: bool = False
    dynamic_allowed: bool = False
    levels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model's listing fields and limits (`context`/`output` are token limits)."""

    id: str
    display_name: str
    created: int
    owned_by: str
    description: str = ""
    version: str = ""
    context: int | None = None
    output: int | None = None
    methods: tuple[str, ...] = ()
    thinking: ThinkingSpec | None = None
    image: bool = False
    #: configured by the user and unknown to the catalog: apply thinking unvalidated
    user_defined: bool = False


class ModelSpecs:
    """The parsed `models.yaml`: model specs by id and the ordered list per section."""

    def __init__(
        self, models: Mapping[str, ModelSpec], sections: Mapping[str, Sequence[ModelSpec]]
    ):
        self.models = dict(models)
        self.sections = {name: tuple(specs) for name, specs in sections.items()}
        self._by_key = {k.casefold(): v for k, v in self.models.items()}
        owners: dict[str, list[str]] = {}
        for name, specs in self.sections.items():
            provider = "codex" if name.startswith("codex-") else name
            for spec in specs:
                found = owners.setdefault(spec.id.casefold(), [])
                if provider not in found:
                    found.append(provider)
        self._providers = {k: tuple(v) for k, v in owners.items()}

    def section(self, name: str) -> tuple[ModelSpec, ...]:
        return self.sections.get(name, ())

    def find(self, model_id: str, section: str | None = None) -> ModelSpec | None:
        """The spec of `model_id` (case-insensitive), preferring `section`'s variant."""
        key = model_id.casefold()
        if section is not None:
            for spec in self.sections.get(section, ()):
                if spec.id.casefold() == key:
                    return spec
        return self._by_key.get(key)

    def providers_of(self, model_id: str) -> tuple[str, ...]:
        """The providers whose catalog section lists `model_id`."""
        return self._providers.get(model_id.casefold(), ())

    def section_for(self, credential: Credential) -> str | None:
        """The section a credential without its own `models:` serves (None: nothing)."""
        if credential.kind == COMPAT_KIND:
            return None
        if credential.provider == "codex":
            plan = str(credential.option("plan_type") or "").strip().lower()
            return _CODEX_PLANS.get(plan, "codex-pro")
        return credential.provider if credential.provider in self.sections else None


# -- parsing: the YAML is a JSON-like boundary, read as Mapping[str, object] ----------------


def _optional_int(raw: Mapping[str, object], key: str) -> int | None:
    value = raw.get(key)
    return None if value is None else _to_int(value, key)


def _to_int(value: object, key: str) -> int:
    if not isinstance(value, int | str | float):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    return int(value)


def _names(value: object) -> tuple[str, ...]:
    if not value:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"expected a list, got {value!r}")
    return tuple(str(v) for v in value)


def _thinking(raw: object, where: str) -> ThinkingSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}.thinking: expected a mapping")
    return ThinkingSpec(
        min=_optional_int(raw, "min"),
        max=_optional_int(raw, "max"),
        zero_allowed=bool(raw.get("zero_allowed", False)),
        dynamic_allowed=bool(raw.get("dynamic_allowed", False)),
        levels=tuple(level.lower() for level in _names(raw.get("levels"))),
    )


def _spec(model_id: str, raw: Mapping[str, object], where: str) -> ModelSpec:
    for key in ("display_name", "created", "owned_by"):
        if key not in raw:
            raise ValueError(f"{where}: missing {key}")
    return ModelSpec(
        id=model_id,
        display_name=str(raw["display_name"]),
        created=_to_int(raw["created"], f"{where}.created"),
        owned_by=str(raw["owned_by"]),
        description=str(raw.get("description") or ""),
        version=str(raw.get("version") or ""),
        context=_optional_int(raw, "context"),
        output=_optional_int(raw, "output"),
        methods=_names(raw.get("methods")),
        thinking=_thinking(raw.get("thinking"), where),
        image=bool(raw.get("image", False)),
    )


def _section_entry(
    item: object, where: str, models: Mapping[str, tuple[Mapping[str, object], ModelSpec]]
) -> ModelSpec:
    """One `providers.<section>[i]`: a model id, or a mapping with `id` and overrides."""
    override: Mapping[str, object] = {}
    if isinstance(item, Mapping):
        override = {str(k): v for k, v in item.items() if k != "id"}
        item = item.get("id")
    if str(item) not in models:
        raise ValueError(f"{where}: unknown model {item!r}")
    base_raw, spec = models[str(item)]
    if override:
        spec = _spec(spec.id, {**base_raw, **override}, where)
    return spec


def parse_catalog(data: Mapping[str, object]) -> ModelSpecs:
    """Build a `ModelSpecs` from the loaded YAML; `ValueError` names the bad entry."""
    raw_models = data.get("models")
    raw_sections = data.get("providers")
    if not isinstance(raw_models, Mapping) or not isinstance(raw_sections, Mapping):
        raise ValueError("catalog needs 'models' and 'providers' mappings")
    models: dict[str, tuple[Mapping[str, object], ModelSpec]] = {}
    for model_id, raw in raw_models.items():
        if not isinstance(raw, Mapping):
            raise ValueError(f"models.{model_id}: expected a mapping")
        models[str(model_id)] = (raw, _spec(str(model_id), raw, f"models.{model_id}"))
    sections: dict[str, list[ModelSpec]] = {}
    for name, items in raw_sections.items():
        specs = sections.setdefault(str(name), [])
        if items is not None and (not isinstance(items, Sequence) or isinstance(items, str)):
            raise ValueError(f"providers.{name}: expected a list")
        for i, item in enumerate(items or ()):
            specs.append(_section_entry(item, f"providers.{name}[{i}]", models))
    return ModelSpecs({k: v[1] for k, v in models.items()}, sections)


@functools.cache
def load_catalog() -> ModelSpecs:
    """The catalog shipped as package data (parsed once per process)."""
    text = importlib.resources.files("cliproxy").joinpath("data/models.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise ValueError("catalog: expected a mapping at the top")
    return parse_catalog(data)
