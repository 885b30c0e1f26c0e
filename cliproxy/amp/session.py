# -*- test-case-name: tests.amp.test_session -*-
"""A session id for sticky routing, Amp's thread id among the sources.

Order (first found wins): Claude Code's `metadata.user_id` with `_session_<uuid>` (or a
JSON user id with `session_id`), `X-Session-ID`, Codex's `Session_id`, Amp's
`X-Amp-Thread-Id`, `X-Client-Request-Id`, any other `metadata.user_id`, and the body's
`conversation_id`. Pure: routing may use it once session affinity lands there (it
belongs below the Amp room then; it lives here until something else needs it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_CLAUDE_SESSION = re.compile(r"_session_([0-9a-fA-F-]{8,})")


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name.lower())
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def session_id(headers: Mapping[str, str], body: Any) -> str | None:
    """The session id of a request (`amp:T-…`, `claude:<uuid>`, ...) or None."""
    body = body if isinstance(body, dict) else {}
    meta = body.get("metadata")
    user_id = meta.get("user_id") if isinstance(meta, dict) else None
    if isinstance(user_id, str) and user_id:
        m = _CLAUDE_SESSION.search(user_id)
        if m:
            return "claude:" + m.group(1)
        if user_id.startswith("{"):
            try:
                sid = json.loads(user_id).get("session_id")
            except (ValueError, AttributeError):
                sid = None
            if isinstance(sid, str) and sid:
                return "claude:" + sid
    found = _header(headers, "X-Session-ID")
    if found:
        return "header:" + found
    found = _header(headers, "Session-Id", "Session_id")
    if found:
        return "codex:" + found
    found = _header(headers, "X-Amp-Thread-Id")
    if found:
        return "amp:" + found
    found = _header(headers, "X-Client-Request-Id")
    if found:
        return "clientreq:" + found
    if isinstance(user_id, str) and user_id:
        return "user:" + user_id
    conv = body.get("conversation_id")
    if isinstance(conv, str) and conv:
        return "conv:" + conv
    return None
