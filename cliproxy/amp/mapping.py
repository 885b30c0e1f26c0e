# -*- test-case-name: tests.amp.test_mapping -*-
"""Amp model mappings: run a model Amp asks for as one you have locally.

Exact `from` names match case-insensitively; `regex: true` entries are searched (also
case-insensitively) in config order after the exact ones, against the name without its
thinking suffix. A mapping only applies when its target has a local provider. The
caller's thinking suffix travels to the target unless the target names its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from twisted.logger import Logger

from cliproxy.registry import split_thinking_suffix

log = Logger()


def split_suffix(model: str) -> tuple[str, str | None]:
    """`g25p(8192)` -> (`g25p`, `8192`); `g25p()` -> (`g25p`, ``); `g25p(high` has none."""
    return split_thinking_suffix(model)


class ModelMapper:
    """Mappings from config, looked up per request.

    Args:
        mappings: `ModelMapping`s (or objects with `from_`, `to`, `regex`).
        has_provider: whether a model name (no suffix) has a local provider now.
    """

    def __init__(
        self, mappings: Iterable[Any] = (), has_provider: Callable[[str], bool] = lambda m: False
    ) -> None:
        self.has_provider = has_provider
        self._exact: dict[str, str] = {}
        self._regexes: list[tuple[re.Pattern[str], str]] = []
        self.update(mappings)

    def update(self, mappings: Iterable[Any]) -> None:
        """Replace every mapping (entries with a blank `from` or `to` are skipped)."""
        exact: dict[str, str] = {}
        regexes: list[tuple[re.Pattern[str], str]] = []
        for m in mappings or ():
            source = (getattr(m, "from_", "") or "").strip()
            target = (getattr(m, "to", "") or "").strip()
            if not source or not target:
                continue
            if getattr(m, "regex", False):
                try:
                    regexes.append((re.compile(source, re.IGNORECASE), target))
                except re.error as e:
                    log.warn(
                        "amp model mapping: invalid regex {source!r} skipped: {e}",
                        source=source,
                        e=e,
                    )
                continue
            exact.setdefault(source.lower(), target)
        self._exact = exact
        self._regexes = regexes

    def __len__(self) -> int:
        return len(self._exact) + len(self._regexes)

    def mappings(self) -> dict[str, str]:
        """A copy of the exact mappings (lowercased `from` -> `to`)."""
        return dict(self._exact)

    def target_for(self, requested: str) -> str:
        """The configured target for `requested` (no provider check, suffix rules applied)."""
        if not requested:
            return ""
        base, suffix = split_suffix(requested.strip())
        target = self._exact.get(base.strip().lower())
        if target is None:
            for pattern, to in self._regexes:
                if pattern.search(base):
                    target = to
                    break
        if target is None:
            return ""
        _, own_suffix = split_suffix(target)
        if own_suffix is not None:
            return target  # the config's suffix wins
        if suffix:
            return f"{target}({suffix})"
        return target

    def map(self, requested: str) -> str:
        """The mapped model for `requested`, or `""` when none applies or its target has
        no local provider."""
        target = self.target_for(requested)
        if not target:
            return ""
        base, _ = split_suffix(target)
        if not self.has_provider(base):
            log.debug("amp model mapping: target {t} has no local provider; skipped", t=target)
            return ""
        return target
