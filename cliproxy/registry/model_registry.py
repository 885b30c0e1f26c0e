# -*- test-case-name: tests.test_registry -*-
"""`ModelRegistry`: which credentials serve which client model id.

The catalog says what each built-in provider serves; config entries with `models:` serve
exactly those; openai-compatibility providers serve only their listed models. Exclusions,
aliases and prefixes are applied per credential (core.md §2.9, §4.5-§4.7).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cliproxy.config import Config, OAuthModelAlias
from cliproxy.credentials.model import Credential, ModelAlias
from cliproxy.credentials.pool import NoCredential, SelectionError
from cliproxy.registry.catalog import (
    COMPAT_KIND,
    OAUTH_KIND,
    ModelSpec,
    ModelSpecs,
    ThinkingSpec,
    load_catalog,
)
from cliproxy.registry.listing import (
    ClaudeModelList,
    GeminiModel,
    GeminiModelList,
    ModelInfo,
    OpenAIModelList,
    claude_model_list,
    gemini_model,
    gemini_model_list,
    openai_model_list,
)
from cliproxy.registry.names import excluded, split_thinking_suffix

LIST_HINT = "GET /v1/models (or /v1beta/models for Gemini clients) lists the available ones"
#: thinking levels an openai-compatibility model accepts when config does not say
COMPAT_THINKING_LEVELS = ("low", "medium", "high")

#: a filter on (credential, upstream model), e.g. `CredentialPool.listable`
Listable = Callable[[Credential, str], bool]


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

    def __iter__(self) -> Iterator[Credential | str]:
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


@dataclass(slots=True)
class _Route:
    model: str  # client-visible id in its listed spelling
    spec: ModelSpec
    listed: bool
    candidates: list[Candidate] = field(default_factory=list)

    def add(self, name: str, candidate: Candidate, listed: bool) -> None:
        if listed and not self.listed:
            self.listed, self.model = True, name
        for existing in self.candidates:
            if (
                existing.credential.id == candidate.credential.id
                and existing.upstream_model == candidate.upstream_model
            ):
                return
        self.candidates.append(candidate)

    def providers(self) -> tuple[str, ...]:
        """The candidates' providers, most credentials first, then by name."""
        counts: dict[str, int] = {}
        for c in self.candidates:
            counts[c.provider] = counts.get(c.provider, 0) + 1
        return tuple(sorted(counts, key=lambda p: (-counts[p], p)))

    def info(self, serving: Sequence[Candidate]) -> ModelInfo:
        spec = self.spec
        return ModelInfo(
            id=self.model,
            display_name=spec.display_name,
            created=spec.created,
            owned_by=spec.owned_by,
            description=spec.description,
            version=spec.version,
            context=spec.context,
            output=spec.output,
            methods=spec.methods,
            thinking=spec.thinking,
            providers=tuple(dict.fromkeys(c.provider for c in serving)),
        )


#: (client id, upstream name, spec, listed): one model a credential offers, before prefixes
_Offer = tuple[str, str, ModelSpec, bool]


def _configured_spec(client: str, cred: Credential, m: ModelAlias, created: int) -> ModelSpec:
    """Listing fields for a model from config that the catalog does not describe.

    openai-compatibility models accept the configured thinking levels (low/medium/high
    unless set). Other unknown names are user-defined: thinking is passed on unchecked.
    """
    if cred.kind == COMPAT_KIND:
        thinking = ThinkingSpec(levels=tuple(m.thinking_levels or COMPAT_THINKING_LEVELS))
        return ModelSpec(client, client, created, cred.provider, thinking=thinking, image=m.image)
    return ModelSpec(client, client, created, cred.provider, image=m.image, user_defined=True)


class ModelRegistry:
    """Client model id -> candidates, built once from a set of credentials.

    Immutable and cheap to build: make a new one on every config or auth-dir reload.

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
        oauth_model_alias: Mapping[str, Sequence[OAuthModelAlias]] | None = None,
        oauth_excluded_models: Mapping[str, Sequence[str]] | None = None,
        catalog: ModelSpecs | None = None,
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
    def from_config(
        cls, config: Config, credentials: Iterable[Credential], catalog: ModelSpecs | None = None
    ) -> ModelRegistry:
        """Build with the global keys of a `cliproxy.config.Config` (and a refreshed catalog)."""
        return cls(
            credentials,
            force_model_prefix=config.force_model_prefix,
            oauth_model_alias=config.oauth_model_alias,
            oauth_excluded_models=config.oauth_excluded_models,
            catalog=catalog,
        )

    # -- building ----------------------------------------------------------------------------

    def _offers(self, cred: Credential) -> Iterator[_Offer]:
        """What `cred` serves: its own `models:`, else its catalog section."""
        if cred.models:
            return self._configured_offers(cred)
        return self._catalog_offers(cred)

    def _configured_offers(self, cred: Credential) -> Iterator[_Offer]:
        section = self.catalog.section_for(cred)
        for m in cred.models:
            client = m.alias or m.name
            spec = None
            if cred.kind != COMPAT_KIND:
                spec = self.catalog.find(m.name, section)
            if spec is None:
                spec = _configured_spec(client, cred, m, self._created)
            yield client, m.name, spec, True
            if client.casefold() != m.name.casefold():
                # The upstream name keeps working, it just is not listed.
                yield m.name, m.name, spec, False

    def _catalog_offers(self, cred: Credential) -> Iterator[_Offer]:
        section = self.catalog.section_for(cred)
        if section is None:
            return
        aliases = self._aliases.get(cred.provider, ()) if cred.kind == OAUTH_KIND else ()
        for spec in self.catalog.section(section):
            renamed = [a for a in aliases if a.name.casefold() == spec.id.casefold()]
            if not renamed or any(a.fork for a in renamed):
                yield spec.id, spec.id, spec, True
            for a in renamed:
                yield a.alias, spec.id, spec, True

    def _register(self, cred: Credential) -> None:
        patterns = tuple(cred.excluded_models)
        if cred.kind == OAUTH_KIND:
            patterns += self._oauth_excluded.get(cred.provider, ())
        for client, upstream, spec, listed in self._offers(cred):
            if patterns and excluded((client, upstream), patterns):
                continue
            for name in self._names_for(cred, client):
                if cred.disabled:
                    providers = self._disabled.setdefault(name.casefold(), [])
                    if cred.provider not in providers:
                        providers.append(cred.provider)
                    continue
                self._add(name, Candidate(cred, upstream, spec), listed)

    def _names_for(self, cred: Credential, client: str) -> list[str]:
        """The names `client` is reachable under: prefixed, and bare unless forced."""
        prefix = cred.prefix.strip("/")
        names = []
        if prefix:
            names.append(f"{prefix}/{client}")
        if not prefix or not self._force_prefix or prefix.casefold() == client.casefold():
            names.append(client)
        return names

    def _add(self, name: str, candidate: Candidate, listed: bool) -> None:
        key = name.casefold()
        route = self._routes.get(key)
        if route is None:
            spec = candidate.spec
            assert spec is not None
            route = self._routes[key] = _Route(name, spec, listed)
        route.add(name, candidate, listed)

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
        return Resolution(
            requested, route.model, suffix, tuple(route.candidates), route.providers()
        )

    def _models_list_hint(self, model: str, providers: Sequence[str]) -> str | None:
        """When entries of the provider exist but their `models:` lists leave `model` out,
        say so: the fix is adding it there, not another key."""
        kinds = sorted({c.kind for c in self.credentials if c.provider in providers and c.models})
        if not kinds:
            return None
        where = " / ".join(f"{kind} entries" for kind in kinds)
        return (
            f"the {where} list their models (`models:`) and '{model}' is not among them: "
            f"add `- name: {model}` to that entry's models, or remove `models:` to serve "
            "every model the provider has"
        )

    def _not_served(self, model: str) -> SelectionError:
        key = model.casefold()
        if key in self._disabled:
            return NoCredential(
                model,
                self._disabled[key],
                "every credential that serves it is disabled; enable one in config.yaml",
            )
        providers = self.catalog.providers_of(model)
        if providers:
            return NoCredential(model, providers, self._models_list_hint(model, providers))
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

    def list_models(self, listable: Listable | None = None) -> list[ModelInfo]:
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
            out.append(route.info(serving))
        return out

    def openai_model_list(self, listable: Listable | None = None) -> OpenAIModelList:
        """`GET /v1/models` for OpenAI clients."""
        return openai_model_list(self.list_models(listable))

    def claude_model_list(self, listable: Listable | None = None) -> ClaudeModelList:
        """`GET /v1/models` for Claude clients (Anthropic's paginated shape, one page)."""
        return claude_model_list(self.list_models(listable))

    def gemini_model_list(self, listable: Listable | None = None) -> GeminiModelList:
        """`GET /v1beta/models`: each model once, Google's field names."""
        return gemini_model_list(self.list_models(listable))

    def gemini_model(self, model_id: str) -> GeminiModel | None:
        """`GET /v1beta/models/{id}` (id with or without `models/`), or None if not listed."""
        key = model_id.removeprefix("models/").casefold()
        route = self._routes.get(key)
        if route is None or not route.listed:
            return None
        for info in self.list_models():
            if info.id.casefold() == key:
                return gemini_model(info)
        return None
