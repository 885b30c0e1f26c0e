# -*- test-case-name: tests.upstream.test_payload -*-
"""`payload:` rules read into `PayloadRules` (core.md §5; applied by upstream/payload.py)."""

from __future__ import annotations

import json

from ._fields import Context, Section, kind_of
from ._yaml import YamlMap, YamlSeq, plain
from .model import PayloadModelRule, PayloadRule, PayloadRules

_KINDS = ("default", "default-raw", "override", "override-raw", "filter")
PROTOCOLS = ("openai", "gemini", "claude", "codex", "antigravity")
FROM_PROTOCOLS = ("openai", "responses", "openai-response", "openai-responses", "gemini", "claude")


def read_payload(sec: Section) -> PayloadRules:
    """All five rule lists; a rule without models or params is dropped with a warning."""
    lists = {kind: tuple(_rules(sec, kind)) for kind in _KINDS}
    return PayloadRules(
        default=lists["default"],
        default_raw=lists["default-raw"],
        override=lists["override"],
        override_raw=lists["override-raw"],
        filter=lists["filter"],
    )


def _rules(sec: Section, kind: str) -> list[PayloadRule]:
    out = []
    for path, line, item, _ in sec.sequence(kind):
        rule = Section.of(sec.ctx, item, path, line)
        models = tuple(_model(rule, p, ln, m) for p, ln, m, _ in rule.sequence("models"))
        models = tuple(m for m in models if m.name)
        params = _params(rule, kind)
        rule.finish()
        if not models or not params:
            sec.ctx.warn(path, line, "a payload rule needs models (with a name) and params")
            continue
        out.append(PayloadRule(models, params))
    return out


def _model(rule: Section, path: str, line: int | None, item: object) -> PayloadModelRule:
    entry = Section.of(rule.ctx, item, path, line)
    protocol = entry.string("protocol").lower()
    if protocol and protocol not in PROTOCOLS:
        raise entry.error("protocol", f"expected one of {', '.join(PROTOCOLS)}")
    source = entry.string("from-protocol").lower()
    if source and source not in FROM_PROTOCOLS:
        raise entry.error("from-protocol", "expected one of openai, responses, gemini, claude")
    model = PayloadModelRule(
        name=entry.string("name"),
        protocol=protocol,
        from_protocol=source,
        headers=entry.headers("headers"),
        match=_conditions(entry, "match"),
        not_match=_conditions(entry, "not-match"),
        exist=tuple(entry.strings("exist")),
        not_exist=tuple(entry.strings("not-exist")),
    )
    entry.finish()
    return model


def _conditions(entry: Section, key: str) -> tuple[tuple[str, object], ...]:
    """`match`/`not-match`: a list of one-key maps (or one map) of JSON path -> value."""
    value = entry.take(key)
    if value is None:
        return ()
    items = list(value) if isinstance(value, YamlSeq) else [value]
    out: list[tuple[str, object]] = []
    for item in items:
        if not isinstance(item, YamlMap):
            raise entry.error(key, f"expected a list of path: value maps, got {kind_of(item)}")
        out.extend((str(path).strip(), plain(v)) for path, v in item.items() if str(path).strip())
    return tuple(out)


def _params(rule: Section, kind: str) -> tuple[tuple[str, object], ...]:
    value = rule.take("params")
    if value is None:
        return ()
    where = rule.path_of("params")
    if kind == "filter":
        if not isinstance(value, YamlSeq):
            raise rule.error("params", f"expected a list of JSON paths, got {kind_of(value)}")
        return tuple((str(p).strip(), None) for p in value if str(p or "").strip())
    if not isinstance(value, YamlMap):
        raise rule.error("params", f"expected a map of JSON path -> value, got {kind_of(value)}")
    out = []
    for path, raw in value.items():
        path = str(path).strip()
        if not path:
            continue
        item = plain(raw)
        if kind.endswith("-raw") and isinstance(item, str):
            item = _raw_json(rule.ctx, f"{where}.{path}", value.lines.get(path), item)
        out.append((path, item))
    return tuple(out)


def _raw_json(ctx: Context, path: str, line: int | None, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ctx.error(path, line, f"not valid JSON ({e.msg})") from None
