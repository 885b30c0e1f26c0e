# -*- test-case-name: tests.amp.test_module -*-
"""What changed in the Amp settings between two configs, for the reload log.

Secrets never appear: a changed upstream key is `added`, `removed` or `updated`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def summarize_mappings(mappings: Iterable[Any]) -> tuple[int, str]:
    """(count, hash) of the non-blank mappings; (0, "") when there are none."""
    entries = []
    for m in mappings or ():
        source = (getattr(m, "from_", "") or "").strip()
        target = (getattr(m, "to", "") or "").strip()
        if not source and not target:
            continue
        regex = "~" if getattr(m, "regex", False) else ""
        entries.append(f"{regex}{source}->{target}")
    if not entries:
        return 0, ""
    digest = hashlib.sha256("|".join(sorted(entries)).encode("utf-8")).hexdigest()
    return len(entries), digest


def _key_sets(entries: Iterable[Any]) -> list[tuple[str, frozenset[str]]]:
    out = []
    for upstream, clients in entries or ():
        keys = frozenset(k.strip() for k in clients or () if k and k.strip())
        out.append(((upstream or "").strip(), keys))
    return out


def upstream_keys_changed(old: Iterable[Any], new: Iterable[Any]) -> bool:
    """Whether the per-client key mapping differs (ignoring blank entries, whitespace
    and repeats inside one entry)."""
    return _key_sets(old) != _key_sets(new)


def amp_changes(old: Any, new: Any) -> list[str]:
    """Reload log lines for two `AmpConfig`s."""
    out = []
    if old.upstream_url.strip() != new.upstream_url.strip():
        out.append(
            f"ampcode.upstream-url: {old.upstream_url.strip()} -> {new.upstream_url.strip()}"
        )
    ok, nk = old.upstream_api_key.strip(), new.upstream_api_key.strip()
    if not ok and nk:
        out.append("ampcode.upstream-api-key: added")
    elif ok and not nk:
        out.append("ampcode.upstream-api-key: removed")
    elif ok != nk:
        out.append("ampcode.upstream-api-key: updated")
    if old.restrict_management_to_localhost != new.restrict_management_to_localhost:
        out.append(
            "ampcode.restrict-management-to-localhost: "
            f"{_b(old.restrict_management_to_localhost)} -> "
            f"{_b(new.restrict_management_to_localhost)}"
        )
    (oc, oh), (nc, nh) = (
        summarize_mappings(old.model_mappings),
        summarize_mappings(new.model_mappings),
    )
    if oh != nh:
        out.append(f"ampcode.model-mappings: updated ({oc} -> {nc} entries)")
    if old.force_model_mappings != new.force_model_mappings:
        out.append(
            f"ampcode.force-model-mappings: {_b(old.force_model_mappings)} -> "
            f"{_b(new.force_model_mappings)}"
        )
    if upstream_keys_changed(old.upstream_api_keys, new.upstream_api_keys):
        out.append(
            f"ampcode.upstream-api-keys: updated ({len(old.upstream_api_keys)} -> "
            f"{len(new.upstream_api_keys)} entries)"
        )
    if old.fallback != new.fallback:
        out.append(f"ampcode.fallback: {old.fallback} -> {new.fallback}")
    return out


def _b(value: bool) -> str:
    return "true" if value else "false"
