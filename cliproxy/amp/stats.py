# -*- test-case-name: tests.amp.test_fallback -*-
"""Where Amp's model calls went, and what they cost.

`AmpStats` counts each routing decision per model (LOCAL_PROVIDER, MODEL_MAPPING,
AMP_CREDITS, NO_PROVIDER, DENIED) and keeps requests and tokens per route type
(`local`, `mapped`, `amp-upstream`, `none`), so a user can see what stayed local and
what spent Amp credits. `UsageTap` reads token counts out of a proxied answer as it
streams past (SSE events or a small JSON body) without holding the stream back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from cliproxy.usage import Usage, fold_usage

LOCAL_PROVIDER = "LOCAL_PROVIDER"
MODEL_MAPPING = "MODEL_MAPPING"
AMP_CREDITS = "AMP_CREDITS"
NO_PROVIDER = "NO_PROVIDER"
DENIED = "DENIED"
#: decision -> route type
ROUTE_OF = {
    LOCAL_PROVIDER: "local",
    MODEL_MAPPING: "mapped",
    AMP_CREDITS: "amp-upstream",
    NO_PROVIDER: "none",
    DENIED: "none",
}
#: non-SSE bodies up to this size are parsed for usage
_JSON_LIMIT = 4 * 1024 * 1024


class RouteTotals:
    __slots__ = ("requests", "failed", "input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.requests = 0
        self.failed = 0
        self.input_tokens = 0
        self.output_tokens = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


class AmpStats:
    """Decision counts per model and request/token totals per route type."""

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.by_route: dict[str, RouteTotals] = {}

    def decided(self, decision: str, model: str) -> None:
        self.decisions[(decision, model)] += 1

    def finished(self, route: str, status: int, usage: Usage | None) -> None:
        t = self.by_route.get(route)
        if t is None:
            t = self.by_route[route] = RouteTotals()
        t.requests += 1
        if status >= 400:
            t.failed += 1
        if usage is not None:
            t.input_tokens += usage.input_tokens
            t.output_tokens += usage.output_tokens

    def count(self, decision: str, model: str | None = None) -> int:
        if model is None:
            return sum(n for (d, _), n in self.decisions.items() if d == decision)
        return self.decisions[(decision, model)]

    def snapshot(self) -> dict[str, Any]:
        per_model: dict[str, dict[str, int]] = {}
        for (decision, model), n in sorted(self.decisions.items()):
            per_model.setdefault(model, {})[decision] = n
        return {
            "decisions": per_model,
            "by_route": {k: v.as_dict() for k, v in sorted(self.by_route.items())},
        }


#: the one extractor (`cliproxy.usage`); Amp's fallback imports it by this name
usage_in = fold_usage


class UsageTap:
    """Watches a proxied body go by and reports its usage once at the end.

    Args:
        on_end: called once with (status, Usage).
    """

    def __init__(self, on_end: Callable[[int, Usage], Any]) -> None:
        self._on_end = on_end
        self.usage = Usage()
        self._line = b""
        self._json: list[bytes] | None = []
        self._json_size = 0
        self._sse = False

    def feed(self, data: bytes) -> None:
        if not self._sse and self._json is not None:
            self._json.append(data)
            self._json_size += len(data)
            if self._json_size > _JSON_LIMIT:
                self._json = None
        if b"data:" in data or self._line:
            self._sse = True
            self._scan(data)

    def _scan(self, data: bytes) -> None:
        data = self._line + data
        end = data.rfind(b"\n")
        if end < 0:
            self._line = data if len(data) < _JSON_LIMIT else b""
            return
        self._line = data[end + 1 :]
        for line in data[:end].split(b"\n"):
            line = line.strip()
            if line.startswith(b"data:") and b"sage" in line:
                try:
                    usage_in(json.loads(line[5:]), self.usage)
                except (ValueError, UnicodeDecodeError):
                    pass

    def end(self, status: int) -> None:
        if not self._sse and self._json:
            try:
                usage_in(json.loads(b"".join(self._json)), self.usage)
            except (ValueError, UnicodeDecodeError):
                pass
        self._json = None
        self._on_end(status, self.usage)
