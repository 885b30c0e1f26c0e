# -*- test-case-name: tests.credentials.test_cooldown -*-
"""How long one failed attempt benches a credential for a model (core.md §4.4)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: 401, 402 and 403 mean the key or account is wrong or out of credit: a person has to act.
AUTH_COOLDOWN = 30 * 60.0
#: 404 (and "model not supported") means this credential will not serve this model soon.
NOT_FOUND_COOLDOWN = 12 * 3600.0
#: 408 and 5xx are usually brief upstream trouble: the first rests the pair this long, each
#: repeat (with no success in between) doubles it, up to TRANSIENT_COOLDOWN. The spec's flat
#: minute blocked a single-key model for a minute on one hiccup.
TRANSIENT_FIRST = 2.0
TRANSIENT_COOLDOWN = 60.0
#: failures further apart than this are not a streak: the next one counts as the first again
STREAK_WINDOW = 5 * 60.0
#: 429 without Retry-After: 1 s, 2 s, 4 s, ... up to this ceiling.
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30 * 60.0
#: An upstream Retry-After longer than this is not believed: a day later we simply ask again.
RETRY_AFTER_CAP = 24 * 3600.0
#: A Cloudflare challenge page behaves like a 429 but never for less than this.
CHALLENGE_MIN = 10.0
#: Backoff delays are spread by +/- this fraction so that credentials do not wake in lockstep.
DEFAULT_JITTER = 0.2

AUTH_STATUSES = frozenset({401, 402, 403})


@dataclass(frozen=True, slots=True)
class Cooldown:
    """The outcome of one failure: bench for `seconds` (0 = not at all), new backoff level.

    `quota` marks a rate-limit bench: the model stays listed, and its expiry is what an
    "all credentials are cooling down" 429 reports. `suspends` marks a bench that hides
    the model from listings (bad key, unknown model).
    """

    seconds: float
    level: int
    quota: bool = False
    suspends: bool = False


def backoff_delay(level: int, rng: random.Random, jitter: float = DEFAULT_JITTER) -> float:
    """The jittered delay for backoff `level` (0 -> about 1 s), always within [1 s, 30 min]."""
    raw = min(BACKOFF_BASE * 2.0 ** min(level, 64), BACKOFF_CAP)
    spread = raw * jitter * (2.0 * rng.random() - 1.0)
    return min(max(raw + spread, BACKOFF_BASE), BACKOFF_CAP)


def transient_delay(repeats: int) -> float:
    """2 s for a first 408/5xx, doubling with each repeat, at most a minute."""
    return min(TRANSIENT_FIRST * 2.0 ** min(max(repeats, 1) - 1, 16), TRANSIENT_COOLDOWN)


def next_level(level: int) -> int:
    """The level after one more un-dated 429; it stops rising once the cap is reached."""
    if BACKOFF_BASE * 2.0 ** min(level, 64) >= BACKOFF_CAP:
        return level
    return level + 1


def clean_retry_after(value: float | None) -> float | None:
    """A usable Retry-After in seconds, or None when absent or nonsense (negative, NaN)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP)


def cooldown_for(
    status: int,
    level: int,
    rng: random.Random,
    *,
    retry_after: float | None = None,
    model_unsupported: bool = False,
    challenge: bool = False,
    jitter: float = DEFAULT_JITTER,
    repeats: int = 1,
) -> Cooldown:
    """Apply the cooldown table to one failed attempt.

    Args:
        status: the upstream HTTP status (0 for a network error).
        level: the current backoff level of this credential and model.
        rng: randomness for the jitter.
        retry_after: seconds the upstream asked us to wait, if it said.
        model_unsupported: a 400/422 whose text says the model is not supported here.
        challenge: the answer was a Cloudflare challenge page.
        jitter: the backoff spread fraction.
        repeats: failures of this pair in a row, this one included (408/5xx grow with it).
    """
    if model_unsupported:
        return Cooldown(NOT_FOUND_COOLDOWN, level, suspends=True)
    if status == 429 or challenge:
        wait = clean_retry_after(retry_after)
        new_level = level
        if wait is None:
            wait = backoff_delay(level, rng, jitter)
            new_level = next_level(level)
        if challenge:
            wait = max(wait, CHALLENGE_MIN)
        return Cooldown(wait, new_level, quota=True)
    if status in AUTH_STATUSES:
        return Cooldown(AUTH_COOLDOWN, level, suspends=True)
    if status == 404:
        return Cooldown(NOT_FOUND_COOLDOWN, level, suspends=True)
    if status == 408 or 500 <= status <= 599:
        return Cooldown(transient_delay(repeats), level)
    return Cooldown(0.0, level)
