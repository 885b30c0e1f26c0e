# -*- test-case-name: tests.upstream.test_claude_cloak -*-
"""Claude Code's system prompt for other clients ("cloaking", core.md §2.6, §2.7).

The minimum viable version of the spec: `system` becomes the one Claude Code block and
the client's own system text moves into the first user turn as a `<system-reminder>`
(dropped in `strict-mode`). No billing line and no cch signature are forged.

Modes (`cloak.mode` on a `claude-api-key` entry; subscription accounts use `auto`):
`auto` cloaks clients that are not Claude Code, `always` cloaks every client, `never`
none. API-key entries without a `cloak` block are not cloaked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy.credentials.model import Credential
from cliproxy.formats.requests.claude_rules import MAX_CACHE_BREAKPOINTS, count_breakpoints
from cliproxy.upstream.headers import lookup

CLAUDE_CODE_SYSTEM = "You are Claude Code, Anthropic's official CLI for Claude."
CLOAK_MODES = ("auto", "always", "never")


def is_claude_code(client_headers: Mapping[str, str]) -> bool:
    """The client is Claude Code (its User-Agent starts with `claude-cli`)."""
    return (lookup(client_headers, "user-agent") or "").startswith("claude-cli")


def cloak_settings(cred: Credential, default_mode: str) -> tuple[str, bool]:
    """(mode, strict) from the credential's `cloak` block, else (`default_mode`, False)."""
    block = cred.option("cloak")
    if not isinstance(block, dict):
        return default_mode, False
    mode = str(block.get("mode") or "auto").lower()
    if mode not in CLOAK_MODES:
        mode = "auto"
    return mode, block.get("strict-mode") is True


def wants_cloak(mode: str, model: str, client_headers: Mapping[str, str]) -> bool:
    if mode == "never" or model.startswith("claude-3-5-haiku"):
        return False
    return mode == "always" or not is_claude_code(client_headers)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system.strip()
    if isinstance(system, list):
        parts = [
            str(b.get("text") or "")
            for b in system
            if isinstance(b, dict) and b.get("type", "text") == "text"
        ]
        return "\n\n".join(p.strip() for p in parts if p.strip())
    return ""


def _with_reminder(messages: list[Any], text: str) -> list[Any]:
    reminder = {"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"}
    messages = list(messages)
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "user":
        first = dict(messages[0])
        content = first.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}] if content else []
        first["content"] = [reminder, *(content or [])]
        messages[0] = first
    else:
        messages.insert(0, {"role": "user", "content": [reminder]})
    return messages


def cloak_body(body: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """Claude Code's system prompt; the client's system text moved into the first user turn
    (or dropped when `strict`).

    Returns a new dict; `body` is not modified.
    """
    out = dict(body)
    client_system = _system_text(body.get("system"))
    if client_system and client_system != CLAUDE_CODE_SYSTEM and not strict:
        out["messages"] = _with_reminder(list(body.get("messages") or []), client_system)
    block: dict[str, Any] = {"type": "text", "text": CLAUDE_CODE_SYSTEM}
    out["system"] = []
    if count_breakpoints(out) < MAX_CACHE_BREAKPOINTS:
        block["cache_control"] = {"type": "ephemeral"}
    out["system"] = [block]
    return out


__all__ = [
    "CLAUDE_CODE_SYSTEM",
    "CLOAK_MODES",
    "cloak_body",
    "cloak_settings",
    "is_claude_code",
    "wants_cloak",
]
