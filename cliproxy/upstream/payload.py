# -*- test-case-name: tests.upstream.test_payload -*-
"""`payload` rules (core.md §5): edits to the translated request before it is sent.

A rule applies when one of its `models` entries matches: the `name` wildcard matches the
upstream model or the model the client asked for (without and with a thinking suffix),
`protocol` (the provider's wire format: `openai`, `gemini`, `claude`, `codex`,
`antigravity`; Gemini CLI and Vertex count as `gemini`) and `from-protocol` (the client's:
`openai`, `responses`, `gemini`, `claude`) agree when given, every `headers` pattern matches
a client header, and the `match`/`not-match`/`exist`/`not-exist` conditions hold on the
request. Then, in this order:

1. `default`: each path missing from the translated request is set; the first rule wins;
2. `default-raw`: the same with raw JSON text;
3. `override`: each path is set, whatever was there; the last rule wins;
4. `override-raw`: the same with raw JSON text;
5. `filter`: each path is removed.

Paths are gjson/sjson paths (`cliproxy.upstream.json_paths`); for Gemini CLI they are relative
to the Gemini request inside the Code Assist envelope, which is what this body is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cliproxy.config.model import PayloadModelRule, PayloadRule, PayloadRules
from cliproxy.formats import Format
from cliproxy.upstream import json_paths
from cliproxy.upstream.json_paths import MISSING, Step

__all__ = ["apply_payload_rules", "client_protocol", "provider_protocol"]

_SUFFIX = re.compile(r"^(.+)\(([^()]*)\)$")


def provider_protocol(provider: str, wire: Format) -> str:
    """The `protocol` name of an executor (its provider and wire format)."""
    if provider == "antigravity":
        return "antigravity"
    return {
        Format.CLAUDE: "claude",
        Format.GEMINI: "gemini",
        Format.OPENAI_RESPONSES: "codex",
        Format.OPENAI_CHAT: "openai",
    }[wire]


def client_protocol(client: Format) -> str:
    """The `from-protocol` name of a client format."""
    return "responses" if client is Format.OPENAI_RESPONSES else str(client.value)


def _normal_from(name: str) -> str:
    name = name.strip().lower()
    return "responses" if name in ("openai-response", "openai-responses", "response") else name


def _models(model: str, requested: str) -> list[str]:
    out: dict[str, str] = {}
    for name in (model, requested):
        name = name.strip()
        if not name:
            continue
        found = _SUFFIX.match(name)
        for candidate in (found.group(1).strip(), name) if found else (name,):
            out.setdefault(candidate.lower(), candidate)
    return list(out.values())


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    return [v for k, v in headers.items() if k.lower() == name.strip().lower()]


def _entry_matches(
    entry: PayloadModelRule,
    body: Any,
    *,
    models: list[str],
    protocol: str,
    from_protocol: str,
    headers: Mapping[str, str],
) -> bool:
    if entry.protocol and entry.protocol.lower() != protocol:
        return False
    if entry.from_protocol and _normal_from(entry.from_protocol) != from_protocol:
        return False
    for name, pattern in entry.headers:
        values = _header_values(headers, name)
        if not any(json_paths.wildcard_match(pattern, v) for v in values):
            return False
    if not any(json_paths.wildcard_match(entry.name, m) for m in models):
        return False
    return (
        all(_equals(body, path, value) for path, value in entry.match)
        and not any(_equals(body, path, value) for path, value in entry.not_match)
        and all(_exists(body, path) for path in entry.exist)
        and not any(_exists(body, path) for path in entry.not_exist)
    )


def _values(body: Any, path: str) -> Iterable[Any]:
    for steps in json_paths.resolve(body, path):
        value = json_paths.get(body, steps)
        if value is not MISSING:
            yield value


def _equals(body: Any, path: str, value: object) -> bool:
    return any(_same(found, value) for found in _values(body, path))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _exists(body: Any, path: str) -> bool:
    return any(found is not None for found in _values(body, path))


def apply_payload_rules(
    rules: PayloadRules,
    body: dict[str, Any],
    *,
    model: str,
    requested_model: str,
    protocol: str,
    from_protocol: str,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """`body` after the rules that match (a new dict; `body` itself is not changed).

    Args:
        rules: the config's `payload` rules.
        body: the translated request, in the provider's format.
        model: the upstream model (alias resolved).
        requested_model: the model the client asked for (may carry a thinking suffix).
        protocol: `provider_protocol` of the executor.
        from_protocol: `client_protocol` of the client's format.
        headers: the client's request headers.
    """
    if not rules.any():
        return body
    models = _models(model, requested_model)
    if not models:
        return body
    original = body
    out = copy.deepcopy(body)

    def targets(*groups: tuple[PayloadRule, ...]) -> Iterator[tuple[list[Step], object]]:
        """(concrete path, value) of every param of the rules in `groups` that apply,
        resolved against the request as it is at that moment."""
        for group in groups:
            for rule in group:
                if not any(
                    _entry_matches(
                        entry,
                        out,
                        models=models,
                        protocol=protocol,
                        from_protocol=from_protocol,
                        headers=headers,
                    )
                    for entry in rule.models
                ):
                    continue
                for path, value in rule.params:
                    # last first, so removing one array item does not shift the next one
                    for steps in reversed(json_paths.resolve(out, path)):
                        yield steps, value

    defaulted: set[tuple[Step, ...]] = set()
    for steps, value in targets(rules.default, rules.default_raw):
        key = tuple(steps)
        if key in defaulted or json_paths.get(original, steps) is not MISSING:
            continue
        if json_paths.put(out, steps, copy.deepcopy(value)):
            defaulted.add(key)
    for steps, value in targets(rules.override, rules.override_raw):
        json_paths.put(out, steps, copy.deepcopy(value))
    for steps, _ in targets(rules.filter):
        json_paths.delete(out, steps)
    return out
