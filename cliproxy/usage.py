# -*- test-case-name: tests.test_usage -*-
"""Token usage: the one extractor every consumer uses, and the in-memory usage book.

`usage_of` reads the token counts out of one parsed JSON object of any wire format (a
whole answer or one stream event); `fold_usage` merges a stream event into a running
`Usage`; `copy_usage` takes the counts a stream translator kept. Routing, the relay and
Amp's statistics all count through these three, so a new provider shape is taught here
once.

`UsageBook` keeps the recent records and running totals; `UsageBook.snapshot` is its read
API. Nothing here touches the disk. Client keys are kept only as their last four
characters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CallTiming",
    "Totals",
    "Usage",
    "UsageBook",
    "UsageRecord",
    "UsageSnapshot",
    "copy_usage",
    "fold_usage",
    "usage_of",
]

#: the four counts, in `Usage`'s field order
_COUNTS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")


@dataclass(slots=True)
class Usage:
    """Token counts of one answer, in OpenAI's meaning.

    `input_tokens` counts every prompt token, cached ones included (Claude reports its cache
    reads and writes apart; they are added back in). `output_tokens` counts every generated
    token, reasoning included (Gemini reports thoughts apart; they are added back in).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def fold(self, other: Usage) -> None:
        """Keep the larger of each count: streams repeat or grow their counts."""
        self.input_tokens = max(self.input_tokens, other.input_tokens)
        self.output_tokens = max(self.output_tokens, other.output_tokens)
        self.cached_tokens = max(self.cached_tokens, other.cached_tokens)
        self.reasoning_tokens = max(self.reasoning_tokens, other.reasoning_tokens)


# -- the extractor -------------------------------------------------------------------------


def usage_of(obj: object) -> Usage | None:
    """The token counts one parsed JSON object reports, or None when it reports none.

    Understands every shape an upstream answers in, whole or streamed:

    - OpenAI Chat `usage` (`prompt_tokens`, `completion_tokens`, `*_tokens_details`);
    - OpenAI Responses `usage` (`input_tokens`, `output_tokens`, `*_tokens_details`),
      also inside a stream event's `response`;
    - Claude `usage` with `cache_read_input_tokens`/`cache_creation_input_tokens`, also
      inside `message_start`'s `message`;
    - Gemini `usageMetadata` (thoughts counted as output and as reasoning), also inside
      Gemini CLI's `response` envelope.

    Several usage objects in one event (not seen in practice) merge as `fold_usage` does.
    """
    found: Usage | None = None
    for key, counts in _usage_objects(obj):
        usage = _gemini_usage(counts) if key == "usageMetadata" else _openai_or_claude(counts)
        if found is None:
            found = usage
        else:
            found.fold(usage)
    return found


def fold_usage(event: object, into: Usage) -> None:
    """Fold the counts one response object or stream event reports into `into`.

    Streams repeat or grow their counts (Claude's `message_start` has the input,
    `message_delta` the output), so the largest value seen of each count wins.
    """
    usage = usage_of(event)
    if usage is not None:
        into.fold(usage)


def copy_usage(counts: object) -> Usage:
    """Our `Usage` from an object holding the four counts as int attributes.

    That is a stream translator's `usage` (the formats' own `Usage`); anything else (None,
    a wrapper without counts) gives zeros rather than an error at the end of a stream.
    """
    out = Usage()
    for name in _COUNTS:
        value = getattr(counts, name, None)
        if isinstance(value, int):
            setattr(out, name, value)
    return out


def _usage_objects(obj: object) -> Iterator[tuple[str, Mapping[str, object]]]:
    """(key, object) for every usage object in `obj`, its `message` and its `response`."""
    if not isinstance(obj, dict):
        return
    holders = [obj]
    for wrapper in ("message", "response"):
        inner = obj.get(wrapper)
        if isinstance(inner, dict):
            holders.append(inner)
    for holder in holders:
        for key in ("usageMetadata", "usage"):
            counts = holder.get(key)
            if isinstance(counts, dict):
                yield key, counts


def _gemini_usage(meta: Mapping[str, object]) -> Usage:
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_int(meta.get("promptTokenCount")),
        output_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _openai_or_claude(usage: Mapping[str, object]) -> Usage:
    # Chat says prompt/completion, Responses and Claude say input/output; only Claude
    # has the cache_* counts, only OpenAI the *_details objects.
    cache_read, cache_write, prompt, input_, completion, output = _ints(usage, _OPENAI_CLAUDE)
    prompt = prompt or input_
    completion = completion or output
    return Usage(
        input_tokens=prompt + cache_read + cache_write,
        output_tokens=completion,
        cached_tokens=cache_read
        + _detail(usage, ("prompt_tokens_details", "input_tokens_details"), "cached_tokens"),
        reasoning_tokens=_detail(
            usage, ("completion_tokens_details", "output_tokens_details"), "reasoning_tokens"
        ),
    )


def _detail(usage: Mapping[str, object], holders: tuple[str, ...], name: str) -> int:
    for holder in holders:
        details = usage.get(holder)
        if isinstance(details, dict):
            return _int(details.get(name))
    return 0


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


_OPENAI_CLAUDE = (
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens",
    "input_tokens",
    "completion_tokens",
    "output_tokens",
)


def _ints(usage: Mapping[str, object], names: tuple[str, ...]) -> list[int]:
    """`_int` of each named count, in one comprehension (once per answer: no call per count)."""
    return [
        v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0
        for v in map(usage.get, names)
    ]


# -- timing ----------------------------------------------------------------------------------


class CallTiming:
    """When one upstream call was sent and when its first byte came, on one clock."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.started: float | None = None
        self.first_byte: float | None = None

    def start(self) -> None:
        self.started = self._now()

    def mark_first_byte(self) -> None:
        """The answer's first byte (headers; then, for a stream, its first body bytes)."""
        self.first_byte = self._now()

    def latency(self) -> float | None:
        return None if self.started is None else max(0.0, self._now() - self.started)

    def ttft(self) -> float | None:
        if self.started is None or self.first_byte is None:
            return None
        return max(0.0, self.first_byte - self.started)


# -- the book --------------------------------------------------------------------------------


@dataclass(slots=True)
class UsageRecord:
    time: float
    model: str
    provider: str
    credential_id: str
    client_key: str  # last 4 characters, or "-"
    route: str  # "local", Amp's "mapped" and "amp-upstream"
    status: int
    stream: bool
    usage: Usage = field(default_factory=Usage)
    #: the model the upstream was asked for (`model` is the client's name, its alias)
    upstream_model: str = ""
    #: seconds from sending upstream to the end of the answer, and to its first byte
    latency: float | None = None
    ttft: float | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Requests, failures (status >= 400) and tokens over some set of records."""

    requests: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def plus(self, rec: UsageRecord) -> Totals:
        u = rec.usage
        return Totals(
            requests=self.requests + 1,
            failed=self.failed + (rec.status >= 400),
            input_tokens=self.input_tokens + u.input_tokens,
            output_tokens=self.output_tokens + u.output_tokens,
            cached_tokens=self.cached_tokens + u.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + u.reasoning_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """The book's totals at one moment; later records do not change it."""

    total: Totals
    by_model: Mapping[str, Totals]
    by_credential: Mapping[str, Totals]
    by_route: Mapping[str, Totals]
    by_client: Mapping[str, Totals]
    #: the most recent records, oldest first
    recent: tuple[UsageRecord, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The totals as JSON-ready dicts (records left out)."""

        def dump(table: Mapping[str, Totals]) -> dict[str, dict[str, int]]:
            return {k: v.as_dict() for k, v in table.items()}

        return {
            "total": self.total.as_dict(),
            "by_model": dump(self.by_model),
            "by_credential": dump(self.by_credential),
            "by_route": dump(self.by_route),
            "by_client": dump(self.by_client),
        }


class UsageBook:
    """The last `keep` records plus running totals per model, credential, route and key."""

    def __init__(self, now: Callable[[], float], keep: int = 10000) -> None:
        self._now = now
        self.records: deque[UsageRecord] = deque(maxlen=keep)
        self.total = Totals()
        self.by_model: dict[str, Totals] = {}
        self.by_credential: dict[str, Totals] = {}
        self.by_route: dict[str, Totals] = {}
        self.by_client: dict[str, Totals] = {}

    def record(
        self,
        *,
        model: str,
        provider: str,
        credential_id: str,
        client_key: str | None,
        status: int,
        stream: bool,
        usage: Usage | None = None,
        route: str = "local",
        upstream_model: str = "",
        timing: CallTiming | None = None,
    ) -> UsageRecord:
        rec = UsageRecord(
            time=self._now(),
            model=model,
            provider=provider,
            credential_id=credential_id,
            client_key=("…" + client_key[-4:]) if client_key else "-",
            route=route,
            status=status,
            stream=stream,
            usage=usage or Usage(),
            upstream_model=upstream_model,
            latency=timing.latency() if timing else None,
            ttft=timing.ttft() if timing else None,
        )
        self.records.append(rec)
        self.total = self.total.plus(rec)
        for table, key in (
            (self.by_model, model),
            (self.by_credential, credential_id),
            (self.by_route, route),
            (self.by_client, rec.client_key),
        ):
            table[key] = table.get(key, _NONE).plus(rec)
        return rec

    def snapshot(self, recent: int = 0) -> UsageSnapshot:
        """The totals now, and the last `recent` records (none unless asked)."""
        records = tuple(self.records)[-recent:] if recent > 0 else ()
        return UsageSnapshot(
            total=self.total,
            by_model=dict(self.by_model),
            by_credential=dict(self.by_credential),
            by_route=dict(self.by_route),
            by_client=dict(self.by_client),
            recent=records,
        )


_NONE = Totals()
