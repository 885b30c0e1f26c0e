# -*- test-case-name: tests.test_registry -*-
"""Which credentials serve which model, and the model listings in every client's shape.

The shipped catalog (`cliproxy/data/models.yaml`) says what each built-in provider
serves; config entries with `models:` serve exactly those; openai-compatibility
providers serve only their listed models. Exclusions, aliases and prefixes are applied
per credential (core.md §2.9, §4.5-§4.7). A `ModelRegistry` is immutable and cheap to
build: make a new one on every config or auth-dir reload.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from cliproxy.credentials.model import Credential, ModelAlias
from cliproxy.credentials.pool import NoCredential, SelectionError

__all__ = [
    "Candidate",
    "Catalog",
    "ModelInfo",
    "ModelRegistry",
    "ModelSpec",
    "Resolution",
    "ThinkingSpec",
    "UnknownModel",
    "load_catalog",
    "matches_exclusion",
    "parse_catalog",
    "split_thinking_suffix",
]

LIST_HINT = "GET /v1/models (or /v1beta/models for Gemini clients) lists the available ones"
#: thinking levels an openai-compatibility model accepts when config does not say
COMPAT_THINKING_LEVELS = ("low", "medium", "high")
_GEMINI_DEFAULT_METHODS = ("generateContent",)
_COMPAT_KIND = "openai-compatibility"
_OAUTH_KIND = "oauth"
#: plan_type claim of a Codex login -> catalog section (core.md §2.5)
_CODEX_PLANS = {
    "pro": "codex-pro",
    "plus": "codex-plus",
    "team": "codex-team",
    "business": "codex-team",
    "go": "codex-team",
    "free": "codex-free",
}


# -- the catalog -----------------------------------------------------------------------------


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


class Catalog:
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
        if credential.kind == _COMPAT_KIND:
            return None
        if credential.provider == "codex":
            plan = str(credential.option("plan_type") or "").strip().lower()
            return _CODEX_PLANS.get(plan, "codex-pro")
        return credential.provider if credential.provider in self.sections else None


def _thinking(raw: object, where: str) -> ThinkingSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}.thinking: expected a mapping")
    levels = raw.get("levels") or ()
    return ThinkingSpec(
        min=None if raw.get("min") is None else int(raw["min"]),
        max=None if raw.get("max") is None else int(raw["max"]),
        zero_allowed=bool(raw.get("zero_allowed", False)),
        dynamic_allowed=bool(raw.get("dynamic_allowed", False)),
        levels=tuple(str(level).lower() for level in levels),
    )


def _spec(model_id: str, raw: Mapping[str, Any], where: str) -> ModelSpec:
    for key in ("display_name", "created", "owned_by"):
        if key not in raw:
            raise ValueError(f"{where}: missing {key}")
    return ModelSpec(
        id=model_id,
        display_name=str(raw["display_name"]),
        created=int(raw["created"]),
        owned_by=str(raw["owned_by"]),
        description=str(raw.get("description") or ""),
        version=str(raw.get("version") or ""),
        context=None if raw.get("context") is None else int(raw["context"]),
        output=None if raw.get("output") is None else int(raw["output"]),
        methods=tuple(str(m) for m in raw.get("methods") or ()),
        thinking=_thinking(raw.get("thinking"), where),
        image=bool(raw.get("image", False)),
    )


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build a `Catalog` from the loaded YAML; `ValueError` names the bad entry."""
    raw_models = data.get("models")
    raw_sections = data.get("providers")
    if not isinstance(raw_models, Mapping) or not isinstance(raw_sections, Mapping):
        raise ValueError("catalog needs 'models' and 'providers' mappings")
    models: dict[str, tuple[Mapping[str, Any], ModelSpec]] = {}
    for model_id, raw in raw_models.items():
        if not isinstance(raw, Mapping):
            raise ValueError(f"models.{model_id}: expected a mapping")
        models[str(model_id)] = (raw, _spec(str(model_id), raw, f"models.{model_id}"))
    sections: dict[str, list[ModelSpec]] = {}
    for name, items in raw_sections.items():
        specs = sections.setdefault(str(name), [])
        for i, item in enumerate(items or ()):
            where = f"providers.{name}[{i}]"
            override: Mapping[str, Any] = {}
            if isinstance(item, Mapping):
                override = {k: v for k, v in item.items() if k != "id"}
                item = item.get("id")
            if str(item) not in models:
                raise ValueError(f"{where}: unknown model {item!r}")
            base_raw, spec = models[str(item)]
            if override:
                spec = _spec(spec.id, {**base_raw, **override}, where)
            specs.append(spec)
    return Catalog({k: v[1] for k, v in models.items()}, sections)


@functools.cache
def load_catalog() -> Catalog:
    """The catalog shipped as package data (parsed once per process)."""
    text = importlib.resources.files("cliproxy").joinpath("data/models.yaml").read_text("utf-8")
    return parse_catalog(yaml.safe_load(text))


# -- names, suffixes and exclusions ----------------------------------------------------------


def split_thinking_suffix(model: str) -> tuple[str, str | None]:
    """`"gpt-5.4(high)"` -> `("gpt-5.4", "high")`; no suffix -> `(model, None)`.

    The suffix is the text inside the last `(`, when the name ends in `)`. Its meaning
    (level, budget, none, auto) is the translators' business; it is only split off here.
    """
    if not model.endswith(")"):
        return model, None
    cut = model.rfind("(")
    if cut <= 0:
        return model, None
    return model[:cut], model[cut + 1 : -1]


def matches_exclusion(model: str, pattern: str) -> bool:
    """Case-insensitive match where `*` stands for any run of characters."""
    text, pat = model.lower(), pattern.strip().lower()
    if "*" not in pat:
        return text == pat
    parts = pat.split("*")
    head, tail = parts[0], parts[-1]
    start, end = len(head), len(text) - len(tail)
    if end < start or not text.startswith(head) or not text.endswith(tail):
        return False
    for part in parts[1:-1]:
        if not part:
            continue
        found = text.find(part, start, end)
        if found < 0:
            return False
        start = found + len(part)
    return True


def _excluded(names: Iterable[str], patterns: Sequence[str]) -> bool:
    return any(matches_exclusion(n, p) for n in names for p in patterns)


# -- resolution ------------------------------------------------------------------------------


class UnknownModel(SelectionError, LookupError):
    """No credential serves the model and no built-in provider knows it (HTTP 404)."""

    status = 404
    code = "model_not_found"

    def __init__(self, model: str, hint: str = LIST_HINT, suggestions: Sequence[str] = ()):
        self.model = model
        self.hint = hint
        self.suggestions = tuple(suggestions)
        maybe = ""
        if self.suggestions:
            maybe = " (did you mean " + " or ".join(f"'{s}'" for s in self.suggestions) + "?)"
        self.message = f"unknown model '{model}'{maybe}; {hint}"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to serve a request: this credential, asked for `upstream_model`.

    `spec` is the upstream model's capabilities (thinking, limits) when known.
    """

    credential: Credential
    upstream_model: str
    spec: ModelSpec | None = field(default=None, compare=False)

    @property
    def provider(self) -> str:
        return self.credential.provider

    def __iter__(self) -> Iterator[Any]:
        # `for cred, upstream in resolution.candidates` reads naturally.
        yield self.credential
        yield self.upstream_model


@dataclass(frozen=True, slots=True)
class Resolution:
    """A client's model name resolved to the credentials that can serve it.

    Attributes:
        requested: the name as the client sent it.
        model: the client-visible id, without thinking suffix (`auto` resolved).
        thinking_suffix: the text inside `(...)`, e.g. `"high"` or `"8192"`, or None.
        candidates: every enabled credential that serves `model`, in config order
            (the pool orders them).
        providers: their providers, most credentials first, then by name.
    """

    requested: str
    model: str
    thinking_suffix: str | None
    candidates: tuple[Candidate, ...]
    providers: tuple[str, ...]

    @property
    def base_model(self) -> str:
        return self.model

    def upstream_name(self, candidate: Candidate) -> str:
        """The model name to hand the executor: upstream name plus the thinking suffix."""
        if self.thinking_suffix is None:
            return candidate.upstream_model
        return f"{candidate.upstream_model}({self.thinking_suffix})"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One listed model: its client-visible id, listing fields and who serves it."""

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
    providers: tuple[str, ...] = ()


@dataclass(slots=True)
class _Route:
    model: str  # client-visible id in its listed spelling
    spec: ModelSpec
    listed: bool
    candidates: list[Candidate] = field(default_factory=list)


def _configured_spec(client: str, cred: Credential, m: ModelAlias, created: int) -> ModelSpec:
    """Listing fields for a model from config that the catalog does not describe.

    openai-compatibility models accept the configured thinking levels (low/medium/high
    unless set). Other unknown names are user-defined: thinking is passed on unchecked.
    """
    if cred.kind == _COMPAT_KIND:
        thinking = ThinkingSpec(levels=tuple(m.thinking_levels or COMPAT_THINKING_LEVELS))
        return ModelSpec(client, client, created, cred.provider, thinking=thinking, image=m.image)
    return ModelSpec(client, client, created, cred.provider, image=m.image, user_defined=True)


class ModelRegistry:
    """Client model id -> candidates, built once from a set of credentials.

    Args:
        credentials: every credential (config entries and auth files), in config order.
        force_model_prefix: global `force-model-prefix`.
        oauth_model_alias: `oauth-model-alias`: provider -> items with `name`, `alias`,
            `fork` (applies to credentials of kind `oauth`).
        oauth_excluded_models: `oauth-excluded-models`: provider -> patterns.
        catalog: the shipped catalog unless given.
        created: `created` for models the catalog does not know.
    """

    def __init__(
        self,
        credentials: Iterable[Credential],
        *,
        force_model_prefix: bool = False,
        oauth_model_alias: Mapping[str, Sequence[Any]] | None = None,
        oauth_excluded_models: Mapping[str, Sequence[str]] | None = None,
        catalog: Catalog | None = None,
        created: int = 0,
    ) -> None:
        self.catalog = catalog if catalog is not None else load_catalog()
        self._force_prefix = force_model_prefix
        self._aliases = {k.lower(): tuple(v) for k, v in (oauth_model_alias or {}).items()}
        self._oauth_excluded = {
            k.lower(): tuple(v) for k, v in (oauth_excluded_models or {}).items()
        }
        self._created = created
        self._routes: dict[str, _Route] = {}
        self._disabled: dict[str, list[str]] = {}  # model key -> providers of disabled creds
        self.credentials: tuple[Credential, ...] = tuple(credentials)
        for cred in self.credentials:
            self._register(cred)

    @classmethod
    def from_config(cls, config: Any, credentials: Iterable[Credential]) -> ModelRegistry:
        """Build with the global keys of a `cliproxy.config.Config`."""
        return cls(
            credentials,
            force_model_prefix=bool(getattr(config, "force_model_prefix", False)),
            oauth_model_alias=getattr(config, "oauth_model_alias", None),
            oauth_excluded_models=getattr(config, "oauth_excluded_models", None),
        )

    # -- building ----------------------------------------------------------------------------

    def _offers(self, cred: Credential) -> Iterator[tuple[str, str, ModelSpec, bool]]:
        """(client id, upstream name, spec, listed) before prefixes."""
        section = self.catalog.section_for(cred)
        if cred.models:
            for m in cred.models:
                client = m.alias or m.name
                spec = None
                if cred.kind != _COMPAT_KIND:
                    spec = self.catalog.find(m.name, section)
                if spec is None:
                    spec = _configured_spec(client, cred, m, self._created)
                yield client, m.name, spec, True
                if client.casefold() != m.name.casefold():
                    # The upstream name keeps working, it just is not listed.
                    yield m.name, m.name, spec, False
            return
        if section is None:
            return
        aliases = self._aliases.get(cred.provider, ()) if cred.kind == _OAUTH_KIND else ()
        for spec in self.catalog.section(section):
            renamed = [a for a in aliases if str(a.name).casefold() == spec.id.casefold()]
            if not renamed:
                yield spec.id, spec.id, spec, True
                continue
            if any(getattr(a, "fork", False) for a in renamed):
                yield spec.id, spec.id, spec, True
            for a in renamed:
                yield str(a.alias), spec.id, spec, True

    def _register(self, cred: Credential) -> None:
        patterns = tuple(cred.excluded_models)
        if cred.kind == _OAUTH_KIND:
            patterns += self._oauth_excluded.get(cred.provider, ())
        prefix = cred.prefix.strip("/")
        for client, upstream, spec, listed in self._offers(cred):
            if patterns and _excluded((client, upstream), patterns):
                continue
            names = []
            if prefix:
                names.append(f"{prefix}/{client}")
            if not prefix or not self._force_prefix or prefix.casefold() == client.casefold():
                names.append(client)
            for name in names:
                if cred.disabled:
                    providers = self._disabled.setdefault(name.casefold(), [])
                    if cred.provider not in providers:
                        providers.append(cred.provider)
                    continue
                self._add(name, Candidate(cred, upstream, spec), listed)

    def _add(self, name: str, candidate: Candidate, listed: bool) -> None:
        key = name.casefold()
        route = self._routes.get(key)
        if route is None:
            spec = candidate.spec
            assert spec is not None
            route = self._routes[key] = _Route(name, spec, listed)
        elif listed and not route.listed:
            route.listed, route.model = True, name
        for existing in route.candidates:
            if (
                existing.credential.id == candidate.credential.id
                and existing.upstream_model == candidate.upstream_model
            ):
                return
        route.candidates.append(candidate)

    # -- resolving ---------------------------------------------------------------------------

    def resolve(self, requested: str) -> Resolution:
        """Split the thinking suffix and find every credential serving the model.

        Raises:
            NoCredential: a built-in provider knows the model but no enabled credential
                serves it (or all that serve it are disabled).
            UnknownModel: nothing knows the model.
        """
        base, suffix = split_thinking_suffix(requested.strip())
        if base.casefold() == "auto":
            first = next((r for r in self._routes.values() if r.listed), None)
            if first is None:
                raise NoCredential(requested, (), None)
            base = first.model
        route = self._routes.get(base.casefold())
        if route is None and base.startswith("models/"):
            route = self._routes.get(base[len("models/") :].casefold())
        if route is None:
            raise self._not_served(base)
        counts: dict[str, int] = {}
        for c in route.candidates:
            counts[c.provider] = counts.get(c.provider, 0) + 1
        providers = tuple(sorted(counts, key=lambda p: (-counts[p], p)))
        return Resolution(requested, route.model, suffix, tuple(route.candidates), providers)

    def _not_served(self, model: str) -> Exception:
        key = model.casefold()
        if key in self._disabled:
            return NoCredential(
                model,
                self._disabled[key],
                "every credential that serves it is disabled; enable one in config.yaml",
            )
        providers = self.catalog.providers_of(model)
        if providers:
            return NoCredential(model, providers)
        listed = [r.model for r in self._routes.values() if r.listed]
        close = difflib.get_close_matches(model, listed, n=2, cutoff=0.75)
        return UnknownModel(model, LIST_HINT, close)

    def spec(self, model: str) -> ModelSpec | None:
        """Capabilities of a client-visible or catalog model id (suffix ignored)."""
        base, _ = split_thinking_suffix(model)
        route = self._routes.get(base.casefold())
        if route is not None:
            return route.spec
        return self.catalog.find(base)

    # -- listing -----------------------------------------------------------------------------

    def list_models(
        self, listable: Callable[[Credential, str], bool] | None = None
    ) -> list[ModelInfo]:
        """Every listed model once, in registration order.

        Args:
            listable: optional filter (e.g. `CredentialPool.listable`): a model is shown
                while at least one of its credentials passes.
        """
        out: list[ModelInfo] = []
        for route in self._routes.values():
            if not route.listed:
                continue
            serving = route.candidates
            if listable is not None:
                serving = [c for c in serving if listable(c.credential, c.upstream_model)]
                if not serving:
                    continue
            providers = tuple(dict.fromkeys(c.provider for c in serving))
            spec = route.spec
            out.append(
                ModelInfo(
                    id=route.model,
                    display_name=spec.display_name,
                    created=spec.created,
                    owned_by=spec.owned_by,
                    description=spec.description,
                    version=spec.version,
                    context=spec.context,
                    output=spec.output,
                    methods=spec.methods,
                    thinking=spec.thinking,
                    providers=providers,
                )
            )
        return out

    def openai_model_list(
        self, listable: Callable[[Credential, str], bool] | None = None
    ) -> dict[str, Any]:
        """`GET /v1/models` for OpenAI clients."""
        return {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
                for m in self.list_models(listable)
            ],
        }

    def claude_model_list(
        self, listable: Callable[[Credential, str], bool] | None = None
    ) -> dict[str, Any]:
        """`GET /v1/models` for Claude clients (Anthropic's paginated shape, one page)."""
        data = [
            {
                "id": m.id,
                "object": "model",
                "type": "model",
                "display_name": m.display_name,
                "created_at": _rfc3339(m.created),
                "owned_by": m.owned_by,
            }
            for m in self.list_models(listable)
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def gemini_model_list(
        self, listable: Callable[[Credential, str], bool] | None = None
    ) -> dict[str, Any]:
        """`GET /v1beta/models`: each model once, Google's field names."""
        return {"models": [_gemini_entry(m) for m in self.list_models(listable)]}

    def gemini_model(self, model_id: str) -> dict[str, Any] | None:
        """`GET /v1beta/models/{id}` (id with or without `models/`), or None if not listed."""
        key = model_id.removeprefix("models/").casefold()
        route = self._routes.get(key)
        if route is None or not route.listed:
            return None
        for info in self.list_models():
            if info.id.casefold() == key:
                return _gemini_entry(info)
        return None


def _rfc3339(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gemini_entry(m: ModelInfo) -> dict[str, Any]:
    name = m.id if m.id.startswith("models/") else f"models/{m.id}"
    entry: dict[str, Any] = {
        "name": name,
        "version": m.version or "001",
        "displayName": m.display_name or m.id,
        "description": m.description or m.display_name or m.id,
    }
    if m.context is not None:
        entry["inputTokenLimit"] = m.context
    if m.output is not None:
        entry["outputTokenLimit"] = m.output
    entry["supportedGenerationMethods"] = list(m.methods or _GEMINI_DEFAULT_METHODS)
    if m.thinking is not None:
        entry["thinking"] = True
    return entry
