"""The cooldown table (core.md §4.4) as a pure function."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.credentials._cooldown import (
    AUTH_COOLDOWN,
    BACKOFF_CAP,
    NOT_FOUND_COOLDOWN,
    RETRY_AFTER_CAP,
    TRANSIENT_COOLDOWN,
    backoff_delay,
    clean_retry_after,
    cooldown_for,
    next_level,
)


@pytest.mark.parametrize("status", [401, 402, 403])
def test_auth_failures_bench_for_thirty_minutes_and_hide_the_model(status):
    cd = cooldown_for(status, 0, random.Random(1))
    assert cd.seconds == AUTH_COOLDOWN == 1800
    assert cd.suspends and not cd.quota


def test_not_found_benches_for_twelve_hours():
    cd = cooldown_for(404, 0, random.Random(1))
    assert cd.seconds == NOT_FOUND_COOLDOWN == 12 * 3600
    assert cd.suspends


def test_model_unsupported_text_benches_like_404_whatever_the_status():
    assert cooldown_for(400, 0, random.Random(1), model_unsupported=True).seconds == 43200


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 529])
def test_timeouts_and_server_errors_bench_briefly_and_grow_only_on_repeats(status):
    cd = cooldown_for(status, 3, random.Random(1))
    assert cd.seconds == 2.0  # one hiccup must not block a single-key model for a minute
    assert cd.level == 3  # the 429 ladder is not touched
    waits = [cooldown_for(status, 3, random.Random(1), repeats=n).seconds for n in range(1, 9)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert max(waits) == TRANSIENT_COOLDOWN


@pytest.mark.parametrize("status", [0, 400, 409, 413, 422])
def test_other_statuses_and_network_errors_do_not_bench(status):
    assert cooldown_for(status, 0, random.Random(1)).seconds == 0


def test_429_with_retry_after_uses_it_and_keeps_the_level():
    cd = cooldown_for(429, 4, random.Random(1), retry_after=42)
    assert (cd.seconds, cd.level, cd.quota) == (42, 4, True)


def test_429_without_retry_after_climbs_one_level():
    cd = cooldown_for(429, 0, random.Random(1))
    assert 1.0 <= cd.seconds <= 1.2
    assert cd.level == 1 and cd.quota and not cd.suspends


def test_challenge_page_is_a_429_of_at_least_ten_seconds():
    assert cooldown_for(403, 0, random.Random(1), challenge=True).seconds >= 10
    assert cooldown_for(200, 0, random.Random(1), challenge=True, retry_after=60).seconds == 60


@given(level=st.integers(0, 200), seed=st.integers(0, 2**32))
def test_backoff_stays_within_jitter_bounds_and_one_second_to_thirty_minutes(level, seed):
    delay = backoff_delay(level, random.Random(seed))
    nominal = min(2.0**level, BACKOFF_CAP)
    assert max(1.0, nominal * 0.8) - 1e-9 <= delay <= min(BACKOFF_CAP, nominal * 1.2) + 1e-9


def test_level_stops_rising_at_the_cap():
    level = 0
    for _ in range(100):
        level = next_level(level)
    assert level == math.ceil(math.log2(BACKOFF_CAP)) == 11
    assert next_level(10) == 11 and next_level(11) == 11


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),
        (-1, None),
        (float("nan"), None),
        ("x", None),
        (0, 0.0),
        ("7", 7.0),
        (10**9, RETRY_AFTER_CAP),
    ],
)
def test_retry_after_is_cleaned(raw, expected):
    assert clean_retry_after(raw) == expected
