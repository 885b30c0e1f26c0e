# -*- test-case-name: tests.config.test_config_amp -*-
"""The Amp settings, written flat (`amp-upstream-url`, as in the Amp guide) or nested (`ampcode:`).

Where both spell the same setting, the nested one wins and a warning says so.
"""

from __future__ import annotations

import re

from ._fields import Section
from .model import AmpConfig, AmpUpstreamKey, ModelMapping

#: nested name under `ampcode:` -> the flat top-level key for the same setting
FLAT_KEYS = {
    "upstream-url": "amp-upstream-url",
    "upstream-api-key": "amp-upstream-api-key",
    "restrict-management-to-localhost": "amp-restrict-management-to-localhost",
    "model-mappings": "amp-model-mappings",
    "force-model-mappings": "amp-force-model-mappings",
    "fallback": "amp-fallback",
}
NESTED_KEYS = (*FLAT_KEYS, "upstream-api-keys")
FALLBACKS = {"upstream": "upstream", "deny": "deny"}


def _where(top: Section, nested: Section | None, name: str) -> tuple[Section, str]:
    """Which section and key hold setting `name`: nested wins when both are given."""
    flat = FLAT_KEYS.get(name)
    in_nested = nested is not None and name in nested.data
    in_flat = flat is not None and flat in top.data
    if in_nested and in_flat:
        assert nested is not None and flat is not None
        top.take(flat)
        top.warn(
            flat,
            f"ampcode.{name} (line {nested.line_of(name)}) is also set and wins; this is ignored",
        )
        return nested, name
    if in_flat:
        assert flat is not None
        return top, flat
    if nested is not None:
        return nested, name
    return top, flat or name


def _upstream_keys(sec: Section, key: str) -> tuple[AmpUpstreamKey, ...]:
    out = []
    for path, line, item, _ in sec.sequence(key):
        entry = Section.of(sec.ctx, item, path, line)
        upstream = entry.string("upstream-api-key")
        clients = entry.unique_strings("api-keys")
        entry.finish()
        if not upstream:
            sec.ctx.warn(path, line, "entry without upstream-api-key dropped")
            continue
        out.append(AmpUpstreamKey(upstream, clients))
    return tuple(out)


def _mappings(sec: Section, key: str) -> tuple[ModelMapping, ...]:
    out = []
    for path, line, item, _ in sec.sequence(key):
        entry = Section.of(sec.ctx, item, path, line)
        source = entry.string("from")
        target = entry.string("to")
        regex = entry.boolean("regex", False)
        entry.finish()
        if not source or not target:
            sec.ctx.warn(path, line, "mapping needs both from and to, dropped")
            continue
        if regex:
            try:
                re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise entry.error("from", f"not a valid regular expression ({exc})") from None
        out.append(ModelMapping(source, target, regex))
    return tuple(out)


def read_amp(top: Section) -> AmpConfig:
    """Build AmpConfig from `ampcode:` and/or the flat `amp-*` keys of `top`."""
    nested = top.section("ampcode")
    sec, key = _where(top, nested, "upstream-url")
    upstream_url = sec.url(key)
    sec, key = _where(top, nested, "upstream-api-key")
    upstream_api_key = sec.string(key)
    sec, key = _where(top, nested, "restrict-management-to-localhost")
    restrict = sec.boolean(key, True)
    sec, key = _where(top, nested, "model-mappings")
    mappings = _mappings(sec, key)
    sec, key = _where(top, nested, "force-model-mappings")
    force = sec.boolean(key, False)
    sec, key = _where(top, nested, "fallback")
    fallback = sec.choice(key, "upstream", FALLBACKS)
    upstream_keys: tuple[AmpUpstreamKey, ...] = ()
    if nested is not None:
        upstream_keys = _upstream_keys(nested, "upstream-api-keys")
        nested.finish()
    return AmpConfig(
        upstream_url=upstream_url,
        upstream_api_key=upstream_api_key,
        upstream_api_keys=upstream_keys,
        restrict_management_to_localhost=restrict,
        model_mappings=mappings,
        force_model_mappings=force,
        fallback=fallback,
    )
