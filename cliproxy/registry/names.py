# -*- test-case-name: tests.test_registry -*-
"""Model names as clients write them: the thinking suffix and exclusion patterns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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


def excluded(names: Iterable[str], patterns: Sequence[str]) -> bool:
    """Whether any of `names` matches any of `patterns`."""
    return any(matches_exclusion(n, p) for n in names for p in patterns)
