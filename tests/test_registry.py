"""ModelRegistry: catalog, aliases, prefixes, exclusions, thinking suffix, listings."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.config import OAuthModelAlias
from cliproxy.credentials.model import Credential, ModelAlias
from cliproxy.credentials.pool import CredentialPool, NoCredential
from cliproxy.registry import (
    ModelRegistry,
    UnknownModel,
    load_catalog,
    matches_exclusion,
    parse_catalog,
    split_thinking_suffix,
)

SONNET = "claude-sonnet-4-5-20250929"


def cred(name, provider="claude", kind=None, **kw) -> Credential:
    kind = kind or f"{provider}-api-key"
    return Credential(
        id=f"{kind}:{name}",
        provider=provider,
        kind=kind,
        api_key=f"key-{name}",
        base_url="https://upstream.example",
        **kw,
    )


def compat(name, provider="openrouter", **kw) -> Credential:
    return cred(name, provider, "openai-compatibility", **kw)


def ids(registry) -> list[str]:
    return [m.id for m in registry.list_models()]


# -- catalog ---------------------------------------------------------------------------------


def test_catalog_sections_cover_every_builtin_provider():
    catalog = load_catalog()
    for section in (
        "claude",
        "gemini",
        "gemini-cli",
        "vertex",
        "aistudio",
        "codex-pro",
        "codex-plus",
        "codex-team",
        "codex-free",
    ):
        assert catalog.section(section), section
    vertex = {m.id for m in catalog.section("vertex")}
    assert {m.id for m in catalog.section("gemini")} <= vertex
    assert "imagen-4.0-generate-001" in vertex
    assert catalog.providers_of("gpt-5.4") == ("codex",)


def test_catalog_thinking_data_matches_the_translator_table():
    catalog = load_catalog()
    sonnet46 = catalog.find("claude-sonnet-4-6").thinking
    assert sonnet46.levels == ("low", "medium", "high") and sonnet46.min == 1024
    assert catalog.find("claude-opus-4-6").thinking.levels[-1] == "max"
    assert catalog.find("claude-opus-4-1-20250805").thinking.zero_allowed is False
    assert catalog.find("claude-3-5-haiku-20241022").thinking is None
    pro = catalog.find("gemini-2.5-pro").thinking
    assert (pro.min, pro.max, pro.zero_allowed, pro.dynamic_allowed) == (128, 32768, False, True)
    assert catalog.find("gemini-2.5-flash").thinking.max == 24576
    assert catalog.find("gemini-3-flash-preview").thinking.levels == (
        "minimal",
        "low",
        "medium",
        "high",
    )
    assert catalog.find("gpt-5.5").thinking.levels == ("low", "medium", "high", "xhigh")
    assert catalog.find("gpt-5.5").context and catalog.find("gpt-5.5").output


def test_catalog_rejects_unknown_ids_and_applies_section_overrides():
    base = {"models": {"m": {"display_name": "M", "created": 1, "owned_by": "x"}}}
    with pytest.raises(ValueError, match=r"providers\.p\[0\].*'nope'"):
        parse_catalog({**base, "providers": {"p": ["nope"]}})
    catalog = parse_catalog({**base, "providers": {"p": [{"id": "m", "output": 5}], "q": ["m"]}})
    assert catalog.section("p")[0].output == 5
    assert catalog.section("q")[0].output is None


# -- suffix and exclusions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, split",
    [
        ("gpt-5.4(high)", ("gpt-5.4", "high")),
        ("gemini-2.5-pro(8192)", ("gemini-2.5-pro", "8192")),
        ("a(b)(c)", ("a(b)", "c")),
        ("m()", ("m", "")),
        ("(high)", ("(high)", None)),
        ("model(x", ("model(x", None)),
        ("plain", ("plain", None)),
    ],
)
def test_thinking_suffix_split(raw, split):
    assert split_thinking_suffix(raw) == split


@given(base=st.text(min_size=1).filter(lambda s: not s.endswith(")")), value=st.text())
def test_thinking_suffix_round_trips(base, value):
    if ")" in value or "(" in value:
        return
    assert split_thinking_suffix(f"{base}({value})") == (base, value)


@pytest.mark.parametrize(
    "pattern, model, hit",
    [
        ("gemini-2.5-*", "gemini-2.5-pro", True),
        ("gemini-2.5-*", "gemini-3-pro-preview", False),
        ("*-preview", "gemini-3-pro-preview", True),
        ("*-preview", "gemini-2.5-pro", False),
        ("*flash*", "gemini-2.5-flash-lite", True),
        ("*flash*", "gemini-2.5-pro", False),
        ("GEMINI-2.5-PRO", "gemini-2.5-pro", True),
        ("gemini-2.5-pro", "gemini-2.5-pro-x", False),
        ("a*a", "a", False),
        ("a*b*c", "a-c-b-c", True),
        ("*", "anything", True),
    ],
)
def test_exclusion_wildcards(pattern, model, hit):
    assert matches_exclusion(model, pattern) is hit


@given(st.text(alphabet="ab*-", max_size=8), st.text(alphabet="ab-", max_size=8))
def test_exclusion_agrees_with_a_regex(pattern, model):
    regex = "^" + ".*".join(re.escape(p) for p in pattern.lower().split("*")) + "$"
    assert matches_exclusion(model, pattern) is bool(re.match(regex, model.lower(), re.S))


# -- which credentials serve what ------------------------------------------------------------


def test_credential_without_models_serves_its_provider_catalog():
    reg = ModelRegistry([cred("a")])
    assert ids(reg) == [m.id for m in load_catalog().section("claude")]
    res = reg.resolve(SONNET)
    assert [(c.credential.id, c.upstream_model) for c in res.candidates] == [
        ("claude-api-key:a", SONNET)
    ]
    assert res.providers == ("claude",)
    assert res.candidates[0].spec.thinking.min == 1024


def test_entry_models_serve_exactly_those_under_their_alias():
    reg = ModelRegistry([cred("a", models=(ModelAlias(SONNET, "sonnet"),))])
    assert ids(reg) == ["sonnet"]
    assert [c.upstream_model for c in reg.resolve("sonnet").candidates] == [SONNET]
    # The upstream name still routes, it is just not listed.
    assert [c.upstream_model for c in reg.resolve(SONNET).candidates] == [SONNET]
    with pytest.raises(NoCredential):
        reg.resolve("claude-opus-4-6")
    info = reg.list_models()[0]
    assert info.display_name == "Claude Sonnet 4.5" and info.owned_by == "anthropic"


def test_lookup_is_case_insensitive_and_tolerates_models_prefix():
    reg = ModelRegistry([cred("a", models=(ModelAlias(SONNET, "Sonnet"),))])
    assert reg.resolve("SONNET").model == "Sonnet"
    assert reg.resolve("models/sonnet").model == "Sonnet"


def test_openai_compat_serves_only_its_listed_models_with_defaults():
    reg = ModelRegistry(
        [compat("a", models=(ModelAlias("vendor/m", "fast"),)), compat("b", provider="empty")]
    )
    assert ids(reg) == ["fast"]
    info = reg.list_models()[0]
    assert info.owned_by == "openrouter"
    assert info.thinking.levels == ("low", "medium", "high")
    assert reg.resolve("vendor/m").candidates[0].upstream_model == "vendor/m"


def test_compat_alias_pool_gives_one_candidate_per_member():
    models = (ModelAlias("up-1", "fast", thinking_levels=("high",)), ModelAlias("up-2", "fast"))
    reg = ModelRegistry([compat("a", models=models)])
    res = reg.resolve("fast")
    assert [c.upstream_model for c in res.candidates] == ["up-1", "up-2"]
    assert res.candidates[0].spec.thinking.levels == ("high",)
    assert ids(reg) == ["fast"]


def test_codex_plan_picks_the_catalog_section():
    free = cred("f", "codex", kind="oauth", options=(("plan_type", "free"),))
    team = cred("t", "codex", kind="oauth", options=(("plan_type", "business"),))
    key = cred("k", "codex")
    assert "gpt-5.4" not in ids(ModelRegistry([free]))
    assert "gpt-5.3-codex-spark" not in ids(ModelRegistry([team]))
    assert "gpt-5.3-codex-spark" in ids(ModelRegistry([key]))


def test_providers_are_ordered_by_credential_count_then_name():
    reg = ModelRegistry(
        [
            cred("v1", "vertex"),
            cred("g1", "gemini"),
            cred("v2", "vertex"),
            cred("c1", "gemini-cli", kind="oauth"),
            cred("c2", "gemini-cli", kind="oauth"),
        ]
    )
    assert reg.resolve("gemini-2.5-pro").providers == ("gemini-cli", "vertex", "gemini")


def test_disabled_credentials_serve_nothing_and_errors_say_why():
    reg = ModelRegistry([compat("a", disabled=True, models=(ModelAlias("m", "m"),))])
    assert ids(reg) == []
    with pytest.raises(NoCredential, match="disabled"):
        reg.resolve("m")


# -- exclusions, prefixes, aliases -----------------------------------------------------------


def test_excluded_models_are_neither_listed_nor_routable():
    reg = ModelRegistry([cred("g", "gemini", excluded_models=("gemini-2.5-*", "*-PREVIEW"))])
    assert ids(reg) == ["gemini-3.5-flash"]
    with pytest.raises(NoCredential):
        reg.resolve("gemini-2.5-pro")


def test_exclusion_matches_an_alias_or_its_upstream_name():
    models = (ModelAlias("up-a", "a"), ModelAlias("up-b", "b"))
    reg = ModelRegistry([compat("x", models=models, excluded_models=("up-a", "b"))])
    assert ids(reg) == []


def test_prefix_exposes_prefixed_and_plain_ids():
    reg = ModelRegistry([cred("t", prefix="team"), cred("p")])
    assert "team/" + SONNET in ids(reg) and SONNET in ids(reg)
    assert [c.credential.id for c in reg.resolve("team/" + SONNET).candidates] == [
        "claude-api-key:t"
    ]
    assert reg.resolve("team/" + SONNET).candidates[0].upstream_model == SONNET
    assert len(reg.resolve(SONNET).candidates) == 2


def test_force_model_prefix_routes_plain_ids_only_to_unprefixed_credentials():
    reg = ModelRegistry([cred("t", prefix="team"), cred("p")], force_model_prefix=True)
    assert [c.credential.id for c in reg.resolve(SONNET).candidates] == ["claude-api-key:p"]
    assert [c.credential.id for c in reg.resolve("team/" + SONNET).candidates] == [
        "claude-api-key:t"
    ]
    only = ModelRegistry([cred("t", prefix="team")], force_model_prefix=True)
    assert all(i.startswith("team/") for i in ids(only))
    with pytest.raises(NoCredential):
        only.resolve(SONNET)


def test_force_model_prefix_keeps_an_id_equal_to_the_prefix():
    reg = ModelRegistry(
        [compat("x", prefix="fast", models=(ModelAlias("up", "fast"),))], force_model_prefix=True
    )
    assert set(ids(reg)) == {"fast", "fast/fast"}


def test_unknown_prefix_is_an_unknown_model():
    reg = ModelRegistry([cred("t", prefix="team")])
    with pytest.raises(UnknownModel):
        reg.resolve("other/" + SONNET)


def test_oauth_model_alias_renames_and_fork_keeps_both():
    aliases = {
        "claude": (
            OAuthModelAlias(SONNET, "s45"),
            OAuthModelAlias("claude-opus-4-6", "o46", fork=True),
        )
    }
    reg = ModelRegistry([cred("o", kind="oauth")], oauth_model_alias=aliases)
    listed = ids(reg)
    assert "s45" in listed and SONNET not in listed
    assert "o46" in listed and "claude-opus-4-6" in listed
    assert reg.resolve("S45(high)").candidates[0].upstream_model == SONNET
    # API-key credentials ignore oauth-model-alias.
    assert SONNET in ids(ModelRegistry([cred("k")], oauth_model_alias=aliases))


def test_oauth_excluded_models_apply_to_oauth_credentials_only():
    excluded = {"claude": ("*opus*",)}
    oauth = ModelRegistry([cred("o", kind="oauth")], oauth_excluded_models=excluded)
    keyed = ModelRegistry([cred("k")], oauth_excluded_models=excluded)
    assert not any("opus" in i for i in ids(oauth))
    assert any("opus" in i for i in ids(keyed))


# -- resolution ------------------------------------------------------------------------------


def test_thinking_suffix_is_split_and_kept_for_the_upstream_name():
    reg = ModelRegistry([cred("a", models=(ModelAlias(SONNET, "sonnet"),))])
    res = reg.resolve("sonnet(8192)")
    assert (res.model, res.base_model, res.thinking_suffix) == ("sonnet", "sonnet", "8192")
    assert res.requested == "sonnet(8192)"
    assert res.upstream_name(res.candidates[0]) == f"{SONNET}(8192)"
    plain = reg.resolve("sonnet")
    assert plain.thinking_suffix is None and plain.upstream_name(plain.candidates[0]) == SONNET


def test_auto_resolves_to_the_first_listed_model():
    reg = ModelRegistry([cred("g", "gemini")])
    res = reg.resolve("auto(low)")
    assert res.model == "gemini-2.5-pro" and res.thinking_suffix == "low"


def test_unknown_model_error_says_how_to_list_models_and_suggests():
    reg = ModelRegistry([cred("a")])
    with pytest.raises(UnknownModel) as info:
        reg.resolve("claude-sonet-4-5-20250929")
    err = info.value
    assert err.status == 404 and err.model == "claude-sonet-4-5-20250929"
    assert "GET /v1/models" in err.message
    assert SONNET in err.suggestions


def test_known_model_without_credential_names_provider_and_fix():
    with pytest.raises(NoCredential) as info:
        ModelRegistry([]).resolve("gpt-5.4(high)")
    err = info.value
    assert err.status == 503 and err.providers == ("codex",) and err.model == "gpt-5.4"
    assert "codex-api-key" in err.message and "cliproxy login codex" in err.message


def test_candidates_unpack_as_credential_and_upstream_name():
    [(credential, upstream)] = ModelRegistry([cred("a")]).resolve(SONNET).candidates
    assert credential.id == "claude-api-key:a" and upstream == SONNET


def test_spec_lookup_for_translators():
    reg = ModelRegistry([compat("x", models=(ModelAlias("up", "fast", thinking_levels=("low",)),))])
    assert reg.spec("fast(high)").thinking.levels == ("low",)
    assert reg.spec("gemini-2.5-flash").thinking.zero_allowed
    assert reg.spec("never-heard-of-it") is None


# -- listings --------------------------------------------------------------------------------


@pytest.fixture
def mixed():
    return ModelRegistry(
        [
            cred("a", models=(ModelAlias(SONNET, "sonnet"),)),
            cred("g", "gemini", excluded_models=("*preview*", "gemini-3.5-*")),
            cred("v", "vertex", excluded_models=("imagen*", "*preview*", "gemini-3.5-*")),
            compat("x", models=(ModelAlias("vendor/m", "fast"),)),
        ]
    )


def test_openai_list_shape(mixed):
    body = mixed.openai_model_list()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [
        "sonnet",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.5-flash-image",
        "fast",
    ]
    for m in body["data"]:
        assert set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model"
    assert body["data"][0] == {
        "id": "sonnet",
        "object": "model",
        "created": 1759104000,
        "owned_by": "anthropic",
    }
    assert body["data"][-1]["owned_by"] == "openrouter"


def test_claude_list_shape(mixed):
    body = mixed.claude_model_list()
    assert body["has_more"] is False
    assert body["first_id"] == "sonnet" and body["last_id"] == "fast"
    first = body["data"][0]
    assert first["type"] == "model" and first["display_name"] == "Claude Sonnet 4.5"
    assert first["created_at"] == "2025-09-29T00:00:00Z"
    assert {"id", "object", "owned_by", "created_at", "type", "display_name"} <= set(first)
    empty = ModelRegistry([]).claude_model_list()
    assert empty == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_gemini_list_shape_lists_each_id_once(mixed):
    models = mixed.gemini_model_list()["models"]
    names = [m["name"] for m in models]
    assert len(names) == len(set(names))  # gemini and vertex both serve gemini-2.5-pro
    assert names[:2] == ["models/sonnet", "models/gemini-2.5-pro"]
    pro = models[1]
    assert pro["displayName"] == "Gemini 2.5 Pro" and pro["version"] == "2.5"
    assert pro["inputTokenLimit"] == 1048576 and pro["outputTokenLimit"] == 65536
    assert "generateContent" in pro["supportedGenerationMethods"]
    assert pro["thinking"] is True
    fast = models[-1]
    assert fast["displayName"] == "fast" and fast["description"] == "fast"
    assert fast["supportedGenerationMethods"] == ["generateContent"]


def test_gemini_single_model(mixed):
    assert mixed.gemini_model("models/gemini-2.5-pro")["name"] == "models/gemini-2.5-pro"
    assert mixed.gemini_model("gemini-2.5-flash")["displayName"] == "Gemini 2.5 Flash"
    assert mixed.gemini_model("nope") is None
    # Routable but not listed (an upstream name behind an alias) is not shown either.
    assert mixed.gemini_model(SONNET) is None


def test_listings_hide_models_whose_only_credentials_are_suspended():
    now = [0.0]
    pool = CredentialPool(lambda: now[0], random.Random(1))
    a, b = (
        cred("a", models=(ModelAlias(SONNET, "sonnet"),)),
        compat("x", models=(ModelAlias("m", "fast"),)),
    )
    reg = ModelRegistry([a, b])
    pool.mark_failure(a, SONNET, 401)
    pool.mark_failure(b, "m", 429)
    assert [m["id"] for m in reg.openai_model_list(pool.listable)["data"]] == ["fast"]
    now[0] += 1800
    assert len(reg.openai_model_list(pool.listable)["data"]) == 2


def test_registry_over_hundreds_of_credentials_builds_fast():
    import time

    creds = [cred(f"c{i}", excluded_models=("*haiku*",)) for i in range(300)]
    started = time.perf_counter()
    reg = ModelRegistry(creds)
    assert time.perf_counter() - started < 1.0
    assert len(reg.resolve(SONNET).candidates) == 300


def test_all_refusals_share_one_base_with_status_code_and_message():
    from cliproxy.credentials.pool import AllCoolingDown, SelectionError

    errors = [UnknownModel("x"), NoCredential("x", ["claude"]), AllCoolingDown("x", ["c"], 3)]
    assert [e.status for e in errors] == [404, 503, 429]
    assert [e.code for e in errors] == ["model_not_found", "auth_not_found", "model_cooldown"]
    assert all(isinstance(e, SelectionError) and e.message == str(e) for e in errors)


def test_unknown_names_on_key_entries_are_user_defined_but_compat_ones_have_levels():
    key = ModelRegistry([cred("a", models=(ModelAlias("claude-next", "next"),))])
    spec = key.resolve("next").candidates[0].spec
    assert spec.user_defined and spec.thinking is None and spec.owned_by == "claude"
    # A compat gateway serving a name the catalog knows still uses the configured levels.
    gw = ModelRegistry([compat("g", models=(ModelAlias("gpt-5.5", "gpt-5.5"),))])
    spec = gw.resolve("gpt-5.5").candidates[0].spec
    assert not spec.user_defined and spec.thinking.levels == ("low", "medium", "high")
    assert gw.list_models()[0].owned_by == "openrouter"
