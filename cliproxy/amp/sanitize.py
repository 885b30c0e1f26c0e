# -*- test-case-name: tests.amp.test_rewriter -*-
"""What Amp's requests need before a provider sees them.

Amp replays assistant turns with the `signature: ""` our response rewriter injected, and
sometimes with thinking blocks that never had a valid signature. Anthropic rejects
both, so: thinking blocks without a usable signature are dropped, and `signature` is
removed from `tool_use` blocks. The body is only re-serialised when something changed.
"""

from __future__ import annotations

import json
from typing import Any

#: the 1M-context beta needs a subscription tier local credentials may not have
CONTEXT_1M_BETA = "context-1m-2025-08-07"


def _valid_signature(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def sanitize_messages(body: dict[str, Any]) -> bool:
    """Clean `body["messages"]` in place; True when anything changed."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    changed = False
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        kept = []
        touched = False
        for block in content:
            if isinstance(block, dict):
                kind = block.get("type")
                if kind == "thinking" and not _valid_signature(block.get("signature")):
                    touched = True
                    continue
                if kind == "tool_use" and "signature" in block:
                    block = {k: v for k, v in block.items() if k != "signature"}
                    touched = True
            kept.append(block)
        if touched:
            message["content"] = kept
            changed = True
    return changed


def sanitize_request_body(raw: bytes) -> bytes:
    """`raw` with SAN rules applied; the same bytes when nothing needed changing."""
    if b'"messages"' not in raw or (b'"thinking"' not in raw and b'"signature"' not in raw):
        return raw
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if not isinstance(body, dict) or not sanitize_messages(body):
        return raw
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def filter_beta_features(header: str, feature: str) -> str:
    """A comma-separated `Anthropic-Beta` value without `feature` ("" when nothing is left)."""
    tokens = [t.strip() for t in header.split(",")]
    return ",".join(t for t in tokens if t and t != feature)
