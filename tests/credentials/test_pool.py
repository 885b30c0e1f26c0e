"""CredentialPool: priority groups, strategies, cooldowns, errors and retry rounds."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy.credentials.model import Credential
from cliproxy.credentials.pool import (
    AllCoolingDown,
    CredentialPool,
    NoCredential,
    go_duration,
    normalize_strategy,
)

MODEL = "claude-sonnet-4-5-20250929"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass(frozen=True)
class Cand:
    credential: Credential
    upstream_model: str = MODEL


def cred(name: str, provider: str = "claude", **kw) -> Credential:
    return Credential(
        id=f"{provider}:{name}",
        provider=provider,
        kind="claude-api-key",
        api_key=f"sk-{name}-secret",
        base_url="https://api.anthropic.com",
        **kw,
    )


def names(cands) -> list[str]:
    return [c.credential.id.split(":", 1)[1] for c in cands]


def make_pool(strategy="round-robin", cooling_off=False, seed=7):
    clock = Clock()
    pool = CredentialPool(
        clock,
        random.Random(seed),
        strategy=lambda: strategy,
        disable_cooling=lambda: cooling_off,
    )
    return clock, pool


# -- ordering --------------------------------------------------------------------------------


def test_round_robin_alternates_between_credentials():
    _, pool = make_pool()
    cands = [Cand(cred("a")), Cand(cred("b"))]
    firsts = [names(pool.order(cands, MODEL))[0] for _ in range(6)]
    assert firsts == ["a", "b", "a", "b", "a", "b"]


def test_round_robin_order_lists_every_ready_candidate_once():
    _, pool = make_pool()
    cands = [Cand(cred(n)) for n in "abc"]
    assert [names(pool.order(cands, MODEL)) for _ in range(3)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
    ]


def test_round_robin_cursor_is_per_model():
    _, pool = make_pool()
    a, b = cred("a"), cred("b")
    m1 = [Cand(a, "m1"), Cand(b, "m1")]
    m2 = [Cand(a, "m2"), Cand(b, "m2")]
    assert names(pool.order(m1, "m1"))[0] == "a"
    assert names(pool.order(m2, "m2"))[0] == "a"
    assert names(pool.order(m1, "m1"))[0] == "b"


def test_fill_first_sticks_to_the_first_credential_until_it_cools():
    clock, pool = make_pool("fill-first")
    a, b = cred("a"), cred("b")
    cands = [Cand(a), Cand(b)]
    assert [names(pool.order(cands, MODEL))[0] for _ in range(4)] == ["a"] * 4
    pool.mark_failure(a, MODEL, 429, retry_after=30)
    assert names(pool.order(cands, MODEL)) == ["b"]
    clock.advance(30)
    assert names(pool.order(cands, MODEL)) == ["a", "b"]


def test_strategy_is_read_live():
    strategy = ["fill-first"]
    pool = CredentialPool(Clock(), random.Random(1), strategy=lambda: strategy[0])
    cands = [Cand(cred("a")), Cand(cred("b"))]
    assert [names(pool.order(cands, MODEL))[0] for _ in range(2)] == ["a", "a"]
    strategy[0] = "rr"
    assert {names(pool.order(cands, MODEL))[0] for _ in range(2)} == {"a", "b"}


def test_highest_priority_group_first_then_lower_ones_as_fallback():
    _, pool = make_pool()
    cands = [
        Cand(cred("low", priority=0)),
        Cand(cred("hi1", priority=10)),
        Cand(cred("hi2", priority=10)),
    ]
    orders = [names(pool.order(cands, MODEL)) for _ in range(4)]
    assert [o[-1] for o in orders] == ["low"] * 4
    assert [o[0] for o in orders] == ["hi1", "hi2", "hi1", "hi2"]


def test_lower_priority_serves_only_while_every_higher_one_cools_or_is_disabled():
    clock, pool = make_pool()
    hi1, hi2, low = cred("hi1", priority=5), cred("hi2", priority=5), cred("low")
    cands = [Cand(hi1), Cand(hi2), Cand(low), Cand(cred("off", priority=9, disabled=True))]
    pool.mark_failure(hi1, MODEL, 500)
    assert names(pool.order(cands, MODEL))[0] == "hi2"
    pool.mark_failure(hi2, MODEL, 429, retry_after=120)
    assert names(pool.order(cands, MODEL)) == ["low"]
    clock.advance(60)
    assert names(pool.order(cands, MODEL)) == ["hi1", "low"]


def test_alias_pool_members_of_one_credential_stay_together_and_rotate():
    _, pool = make_pool()
    a, b = cred("a"), cred("b")
    cands = [Cand(a, "up-1"), Cand(a, "up-2"), Cand(b, "up-3")]
    first = pool.order(cands, "fast")
    second = pool.order(cands, "fast")
    third = pool.order(cands, "fast")
    assert [c.upstream_model for c in first] == ["up-1", "up-2", "up-3"]
    assert [c.upstream_model for c in second] == ["up-3", "up-2", "up-1"]
    assert [c.upstream_model for c in third] == ["up-2", "up-1", "up-3"]


# -- cooldowns -------------------------------------------------------------------------------


def test_429_with_retry_after_is_skipped_until_it_passes():
    clock, pool = make_pool()
    a, b = cred("a"), cred("b")
    cands = [Cand(a), Cand(b)]
    assert pool.mark_failure(a, MODEL, 429, retry_after=30) == 30
    for _ in range(3):
        assert names(pool.order(cands, MODEL)) == ["b"]
    clock.advance(29.9)
    assert not pool.ready(a, MODEL)
    clock.advance(0.1)
    assert pool.ready(a, MODEL)
    assert "a" in names(pool.order(cands, MODEL))


def test_exponential_backoff_doubles_per_window_within_jitter_and_caps_at_thirty_minutes():
    clock, pool = make_pool(seed=3)
    a = cred("a")
    waits = []
    for _ in range(16):
        waits.append(pool.mark_failure(a, MODEL, 429))
        clock.advance(waits[-1])
    for level, wait in enumerate(waits):
        nominal = min(2.0**level, 1800.0)
        assert max(1.0, nominal * 0.8) <= wait <= min(1800.0, nominal * 1.2), (level, wait)
    assert waits[-1] >= 1800 * 0.8


def test_concurrent_429s_inside_one_window_escalate_only_once():
    clock, pool = make_pool(seed=5)
    a = cred("a")
    first = pool.mark_failure(a, MODEL, 429)
    until = pool.blocked_until(a, MODEL)
    clock.advance(0.2)
    for _ in range(10):
        pool.mark_failure(a, MODEL, 429)
    assert pool.blocked_until(a, MODEL) == until
    [state] = pool.states()
    assert state.level == 1 and state.failures == 11
    clock.advance(first)
    second = pool.mark_failure(a, MODEL, 429)
    assert 1.6 <= second <= 2.4  # level 1 -> about 2 s, not 2**11


def test_retry_after_inside_a_window_extends_it_but_never_shortens():
    clock, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 429, retry_after=10)
    pool.mark_failure(a, MODEL, 429, retry_after=50)
    assert pool.blocked_until(a, MODEL) == clock() + 50
    pool.mark_failure(a, MODEL, 429, retry_after=5)
    assert pool.blocked_until(a, MODEL) == clock() + 50
    pool.mark_failure(a, MODEL, 404)
    pool.mark_failure(a, MODEL, 503)
    assert pool.blocked_until(a, MODEL) == clock() + 12 * 3600


def test_success_resets_the_backoff_level():
    clock, pool = make_pool(seed=2)
    a = cred("a")
    for _ in range(5):
        clock.advance(pool.mark_failure(a, MODEL, 429))
    pool.mark_success(a, MODEL)
    assert pool.states() == []
    assert pool.mark_failure(a, MODEL, 429) <= 1.2


@pytest.mark.parametrize(
    "status, seconds",
    [
        (401, 1800),
        (402, 1800),
        (403, 1800),
        (404, 43200),
        (408, 2),
        (500, 2),
        (502, 2),
        (503, 2),
        (504, 2),
    ],
)
def test_status_durations(status, seconds):
    clock, pool = make_pool()
    a = cred("a")
    assert pool.mark_failure(a, MODEL, status) == seconds
    clock.advance(seconds - 1)
    assert not pool.ready(a, MODEL)
    clock.advance(1)
    assert pool.ready(a, MODEL)


@pytest.mark.parametrize("status", [0, 400, 422])
def test_errors_outside_the_table_do_not_cool(status):
    _, pool = make_pool()
    a = cred("a")
    assert pool.mark_failure(a, MODEL, status) == 0
    assert pool.ready(a, MODEL)


def test_a_client_that_cancels_never_cools_a_credential():
    _, pool = make_pool()
    a = cred("a")
    for _ in range(5):
        pool.mark_cancelled(a, MODEL)
    assert pool.ready(a, MODEL)
    assert pool.states() == []
    assert names(pool.order([Cand(a)], MODEL)) == ["a"]


def test_cooldown_is_per_model():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, "model-x", 404)
    assert not pool.ready(a, "model-x")
    assert pool.ready(a, "model-y")


def test_failure_without_model_benches_the_whole_credential_until_a_success():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, None, 401)
    assert not pool.ready(a, "model-x") and not pool.ready(a, "model-y")
    pool.mark_success(a, "model-x")
    assert pool.ready(a, "model-y")


def test_global_disable_cooling_records_but_never_benches():
    _, pool = make_pool(cooling_off=True)
    a = cred("a")
    assert pool.mark_failure(a, MODEL, 401) == 0
    assert pool.mark_failure(a, MODEL, 429) == 0
    assert pool.ready(a, MODEL)
    assert pool.states()[0].last_status == 429


def test_per_credential_disable_cooling():
    _, pool = make_pool()
    a, b = cred("a", disable_cooling=True), cred("b")
    pool.mark_failure(a, MODEL, 500)
    pool.mark_failure(b, MODEL, 500)
    assert pool.ready(a, MODEL) and not pool.ready(b, MODEL)


def test_listable_hides_bad_keys_but_not_rate_limits():
    _, pool = make_pool()
    a, b = cred("a"), cred("b")
    pool.mark_failure(a, MODEL, 401)
    pool.mark_failure(b, MODEL, 429)
    assert not pool.listable(a, MODEL)
    assert pool.listable(b, MODEL)


# -- errors ----------------------------------------------------------------------------------


def test_all_cooling_raises_429_saying_when_the_first_frees():
    clock, pool = make_pool()
    a, b = cred("a"), cred("b")
    pool.mark_failure(a, MODEL, 429, retry_after=90)
    pool.mark_failure(b, MODEL, 429, retry_after=30.2)
    with pytest.raises(AllCoolingDown) as info:
        pool.order([Cand(a), Cand(b)], MODEL)
    err = info.value
    assert err.status == 429 and err.reset_seconds == 31
    assert err.provider == "claude"
    assert err.reset_time == "31s"
    assert f"All credentials for model {MODEL} are cooling down via provider claude" in str(err)
    assert "31s" in err.message
    assert err.body_fields()["code"] == "model_cooldown"
    assert err.body_fields()["reset_seconds"] == 31
    assert pool.next_free_time([Cand(a), Cand(b)]) == pytest.approx(clock() + 30.2)


def test_all_cooling_across_providers_names_no_single_provider():
    _, pool = make_pool()
    a, g = cred("a"), cred("g", provider="gemini")
    pool.mark_failure(a, MODEL, 401)
    pool.mark_failure(g, MODEL, 500)
    with pytest.raises(AllCoolingDown) as info:
        pool.order([Cand(a), Cand(g)], MODEL)
    assert info.value.provider is None
    assert info.value.reset_seconds == 2
    assert info.value.providers == ("claude", "gemini")
    assert "via provider" not in info.value.message


def test_all_cooling_says_which_credentials_rest_why_and_for_how_long():
    clock, pool = make_pool()
    a, b = cred("a"), cred("b")
    pool.mark_failure(a, MODEL, 500)
    pool.mark_failure(b, MODEL, 429, retry_after=40)
    with pytest.raises(AllCoolingDown) as info:
        pool.order([Cand(a), Cand(b)], MODEL)
    msg = info.value.message
    assert "the first frees in 2s" in msg
    assert f"{a.label} had upstream trouble (HTTP 500), resting 2s more" in msg
    assert f"{b.label} is rate-limited (HTTP 429), resting 40s more" in msg
    assert msg.index(a.label) < msg.index(b.label)  # soonest first


def test_repeated_server_errors_grow_the_rest_and_an_old_one_does_not_count():
    clock, pool = make_pool()
    a = cred("a")
    waits = []
    for _ in range(4):
        waits.append(pool.mark_failure(a, MODEL, 503))
        clock.advance(waits[-1])
    assert waits == [2.0, 4.0, 8.0, 16.0]
    clock.advance(10 * 60)
    assert pool.mark_failure(a, MODEL, 503) == 2.0
    pool.mark_success(a, MODEL)
    assert pool.mark_failure(a, MODEL, 503) == 2.0


def test_no_candidate_raises_503_naming_how_to_add_one():
    _, pool = make_pool()
    with pytest.raises(NoCredential) as info:
        pool.order([], MODEL)
    assert info.value.status == 503
    with pytest.raises(NoCredential) as info:
        pool.order([Cand(cred("x", disabled=True))], MODEL)
    assert "claude" in info.value.message and "disabled" in info.value.message


def test_no_credential_hint_names_the_provider_and_the_fix():
    err = NoCredential("claude-opus-4-6", ["claude"])
    assert "claude-api-key" in err.message and "cliproxy login claude" in err.message
    compat = NoCredential("fast", ["openrouter"])
    assert "openai-compatibility provider 'openrouter'" in compat.message


def test_secrets_never_appear_in_errors():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 401)
    with pytest.raises(AllCoolingDown) as info:
        pool.order([Cand(a)], MODEL)
    assert "secret" not in str(info.value)


# -- retry rounds ----------------------------------------------------------------------------


def test_retry_rounds_off_unless_max_retry_interval_is_positive():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 429, retry_after=5)
    assert pool.retry_delay([Cand(a)], 0, request_retry=3, max_retry_interval=0) is None


def test_retry_waits_for_the_shortest_cooldown_within_the_interval():
    _, pool = make_pool()
    a, b = cred("a"), cred("b")
    pool.mark_failure(a, MODEL, 429, retry_after=20)
    pool.mark_failure(b, MODEL, 429, retry_after=5)
    cands = [Cand(a), Cand(b)]
    assert pool.retry_delay(cands, 0, request_retry=3, max_retry_interval=30) == 5
    assert pool.retry_delay(cands, 0, request_retry=3, max_retry_interval=4) is None


def test_retry_stops_when_attempts_are_used_up():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 500)
    kw = {"request_retry": 2, "max_retry_interval": 120}
    assert pool.retry_delay([Cand(a)], 1, **kw) == 2
    assert pool.retry_delay([Cand(a)], 2, **kw) is None


def test_per_credential_request_retry_overrides_the_global_value():
    _, pool = make_pool()
    a = cred("a", options=(("request-retry", 5),))
    pool.mark_failure(a, MODEL, 500)
    assert pool.retry_delay([Cand(a)], 3, request_retry=1, max_retry_interval=60) == 2


def test_request_invalid_errors_are_never_retried():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 500)
    assert (
        pool.retry_delay([Cand(a)], 0, request_retry=3, max_retry_interval=60, request_invalid=True)
        is None
    )


def test_without_cooldowns_only_a_429_with_short_retry_after_waits():
    _, pool = make_pool(cooling_off=True)
    a = cred("a")
    pool.mark_failure(a, MODEL, 429, retry_after=3)
    kw = {"request_retry": 1, "max_retry_interval": 10}
    assert pool.retry_delay([Cand(a)], 0, last_status=429, retry_after=3, **kw) == 3
    assert pool.retry_delay([Cand(a)], 0, last_status=429, retry_after=30, **kw) is None
    assert pool.retry_delay([Cand(a)], 0, last_status=503, retry_after=3, **kw) is None
    assert pool.retry_delay([Cand(a)], 1, last_status=429, retry_after=3, **kw) is None


def test_any_non_invalid_status_can_trigger_a_retry_round_not_only_the_legacy_list():
    _, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 401)  # not in "403, 408, 500, 502, 503, 504"
    assert pool.retry_delay([Cand(a)], 0, request_retry=1, max_retry_interval=3600) == 1800


# -- housekeeping ----------------------------------------------------------------------------


def test_retain_drops_state_of_removed_credentials():
    _, pool = make_pool()
    a, b = cred("a"), cred("b")
    pool.mark_failure(a, MODEL, 401)
    pool.mark_failure(b, MODEL, 401)
    pool.retain([b.id])
    assert [s.credential_id for s in pool.states()] == [b.id]
    assert pool.ready(a, MODEL)


def test_prune_forgets_long_expired_state():
    clock, pool = make_pool()
    a = cred("a")
    pool.mark_failure(a, MODEL, 500)
    clock.advance(60 + 29 * 60)
    pool.prune()
    assert len(pool.states()) == 1
    clock.advance(61)
    pool.prune()
    assert pool.states() == []


def test_state_stays_bounded_under_many_models():
    clock, pool = make_pool()
    a = cred("a")
    for i in range(5000):
        pool.mark_failure(a, f"m{i}", 500)
        clock.advance(1)
    assert len(pool.states()) <= 2 * 60 * 30


def test_strategy_spellings_and_go_durations():
    assert normalize_strategy("FF") == normalize_strategy("fillfirst") == "fill-first"
    assert normalize_strategy("rr") == normalize_strategy(None) == "round-robin"
    assert [go_duration(s) for s in (0, 45, 90, 3600, 3725.2)] == [
        "0s",
        "45s",
        "1m30s",
        "1h0m0s",
        "1h2m6s",
    ]


# -- invariants ------------------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.sampled_from(["fail", "success", "cancel", "advance", "order"]),
        st.integers(0, 3),  # credential
        st.sampled_from([0, 400, 401, 403, 404, 408, 429, 500, 503]),
        st.one_of(st.none(), st.floats(0, 10**7, allow_nan=False)),
        st.floats(0, 4000, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, strategy=st.sampled_from(["round-robin", "fill-first"]))
def test_any_sequence_of_marks_keeps_the_pool_consistent(ops, strategy):
    clock, pool = make_pool(strategy)
    creds = [cred(n, priority=p) for n, p in (("a", 1), ("b", 1), ("c", 0), ("d", 0))]
    cands = [Cand(c) for c in creds]
    for op, i, status, retry_after, dt in ops:
        c = creds[i]
        if op == "fail":
            wait = pool.mark_failure(c, MODEL, status, retry_after)
            assert 0 <= wait <= 24 * 3600
        elif op == "success":
            pool.mark_success(c, MODEL)
            assert pool.ready(c, MODEL)
        elif op == "cancel":
            before = pool.blocked_until(c, MODEL)
            pool.mark_cancelled(c, MODEL)
            assert pool.blocked_until(c, MODEL) == before
        elif op == "advance":
            clock.advance(dt)
        else:
            ready = [x for x in cands if pool.ready(x.credential, MODEL)]
            try:
                ordered = pool.order(cands, MODEL)
            except AllCoolingDown as err:
                assert ready == []
                free = pool.next_free_time(cands)
                assert free is not None
                assert err.reset_seconds == max(1, math.ceil(free - clock()))
            else:
                assert sorted(names(ordered)) == sorted(names(ready))
                top = max(x.credential.priority for x in ready)
                assert ordered[0].credential.priority == top
        for s in pool.states():
            assert s.level <= 11
