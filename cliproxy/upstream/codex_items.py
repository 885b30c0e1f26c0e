# -*- test-case-name: tests.upstream.test_codex_items -*-
"""Input item ids the Codex backend accepts (as CLIProxyAPI's `SanitizeCodexInputItemIDs`).

The backend takes item ids of at most 64 characters, with its own type prefixes (`msg_`,
`rs_`, `fc_`, `ctc_`, `ctco_`). Other providers' ids (Grok's long ones, Amp's `item_...`)
come back in a conversation's history, so before sending:

- a reasoning item with an overlong id and encrypted content is dropped (the content is
  another backend's and the id cannot be kept);
- an id of a typed item without its prefix gets it (`item_1` -> `msg_item_1`);
- an id still longer than 64 characters is cut to 47 and given a hash suffix, the same
  for the same id (so a call and its output stay paired), changed if that collides.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["ID_LIMIT", "sanitize_input_ids"]

ID_LIMIT = 64
_PREFIX = {
    "message": "msg",
    "reasoning": "rs",
    "function_call": "fc",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
}


def _dropped(item: dict[str, Any]) -> bool:
    item_id = item.get("id")
    return (
        item.get("type") == "reasoning"
        and isinstance(item_id, str)
        and len(item_id) > ID_LIMIT
        and isinstance(item.get("encrypted_content"), str)
        and bool(item["encrypted_content"])
    )


def _prefixed(item: dict[str, Any], item_id: str) -> str:
    prefix = _PREFIX.get(str(item.get("type") or ""))
    if not prefix or not item_id or item_id.startswith(prefix):
        return item_id
    return f"{prefix}_{item_id}"


def _hashed(item_id: str, attempt: int) -> str:
    seed = item_id if attempt == 0 else f"{item_id}\0{attempt}"
    suffix = "_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
    return item_id[: ID_LIMIT - len(suffix)] + suffix


def sanitize_input_ids(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with its `input` item ids made acceptable (a new dict when changed)."""
    items = payload.get("input")
    if not isinstance(items, list):
        return payload
    kept = [i for i in items if not (isinstance(i, dict) and _dropped(i))]
    originals = {i["id"] for i in kept if isinstance(i, dict) and isinstance(i.get("id"), str)}
    taken = {i for i in originals if len(i) <= ID_LIMIT}
    renamed: dict[str, str] = {}
    out: list[Any] = []
    for item in kept:
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item_id, str):
            out.append(item)
            continue
        new = _prefixed(item, item_id)
        if (new != item_id and new in originals) or len(new) > ID_LIMIT:
            if new not in renamed:
                attempt = 0
                while (candidate := _hashed(new, attempt)) in taken:
                    attempt += 1
                renamed[new] = candidate
                taken.add(candidate)
            new = renamed[new]
        out.append(item if new == item_id else {**item, "id": new})
    if out == items:
        return payload
    return {**payload, "input": out}
