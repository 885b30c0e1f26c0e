# -*- test-case-name: tests.credentials.test_affinity -*-
"""Session affinity (`routing.session-affinity`): one conversation stays on one credential.

Providers cache prompt prefixes per account, so a long agent session served by one
credential reads its cache instead of paying for the whole context on every turn.

The session key (CLIProxyAPI's order, `sdk/cliproxy/auth/selector.go`): the
`X-Claude-Code-Session-Id` header; Claude Code's `metadata.user_id` session (the
`_session_<uuid>` suffix or a JSON user id's `session_id`); `Session-Id`/`Session_id`
(Codex); `X-Session-ID`; `X-Session-Affinity`; `X-Client-Request-Id`; Amp's
`X-Amp-Thread-Id`; body `session_id`/`sessionId`; `prompt_cache_key`; `conversation`
(or `conversation.id`); `metadata.user_id`; `conversation_id`; else an FNV-64a hash of
the first system, user and assistant texts (100 characters each). A value longer than
256 characters or holding control characters is ignored.

A binding `provider::session::model` lives `session-affinity-ttl` (refreshed on each
use). The pool still decides which credentials are ready: a bound credential that is
cooling down is not among them, so the request goes to the pool's first choice and the
session is bound to whichever credential answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from twisted.logger import Logger

from cliproxy.credentials.model import Credential

__all__ = ["SESSION_HEADERS", "SessionAffinity", "session_key"]

log = Logger()

MAX_ID = 256
#: bindings kept at most (the oldest are dropped first)
MAX_BINDINGS = 50_000
_CLAUDE_SESSION = re.compile(r"_session_([a-fA-F0-9-]+)$")
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3

#: (header, key prefix), in order, before the body is read
_HEADERS = (
    ("X-Claude-Code-Session-Id", "claude"),
    ("Session-Id", "codex"),
    ("Session_id", "codex"),
    ("X-Session-ID", "header"),
    ("X-Session-Affinity", "affinity"),
    ("X-Client-Request-Id", "clientreq"),
    ("X-Amp-Thread-Id", "amp"),
)

#: the request headers the endpoints must hand to routing for the session key
SESSION_HEADERS = tuple(name.lower().encode("ascii") for name, _ in _HEADERS)


def _explicit(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        return ""
    value = raw.strip()
    if len(value) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        log.info(
            "session id in {field} ignored for affinity ({n} characters or control characters)",
            field=where,
            n=len(raw),
        )
        return ""
    return value


def _claude_session(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata")
    user_id = meta.get("user_id") if isinstance(meta, dict) else None
    if not isinstance(user_id, str) or not user_id.strip():
        return ""
    user_id = user_id.strip()
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            return ""
        sid = parsed.get("session_id") if isinstance(parsed, dict) else None
        return _explicit(sid, "metadata.user_id.session_id")
    m = _CLAUDE_SESSION.search(user_id)
    return _explicit(m.group(1), "metadata.user_id") if m else ""


def _body_key(body: Mapping[str, Any]) -> str:
    for name in ("session_id", "sessionId"):
        if sid := _explicit(body.get(name), name):
            return "session:" + sid
    if pck := _explicit(body.get("prompt_cache_key"), "prompt_cache_key"):
        return "pck:" + pck
    conv = body.get("conversation")
    conv_id = conv.get("id") if isinstance(conv, dict) else conv
    if sid := _explicit(conv_id, "conversation"):
        return "conv:" + sid
    meta = body.get("metadata")
    if isinstance(meta, dict) and (uid := _explicit(meta.get("user_id"), "metadata.user_id")):
        return "user:" + uid
    if sid := _explicit(body.get("conversation_id"), "conversation_id"):
        return "conv:" + sid
    return ""


def session_key(headers: Mapping[str, str], body: Any) -> str:
    """The request's session key (`claude:…`, `codex:…`, `amp:…`, `msg:<hash>`), or ""."""
    body = body if isinstance(body, dict) else {}
    lowered = {k.lower(): v for k, v in headers.items()}
    first = _HEADERS[0]
    if sid := _explicit(lowered.get(first[0].lower()), first[0]):
        return f"{first[1]}:{sid}"
    if sid := _claude_session(body):
        return "claude:" + sid
    for name, prefix in _HEADERS[1:]:
        if sid := _explicit(lowered.get(name.lower()), name):
            return f"{prefix}:{sid}"
    return _body_key(body) or _message_hash(body)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in parts if isinstance(t, str))
    return ""


def _first_texts(body: Mapping[str, Any]) -> dict[str, str]:
    """The first system, user and assistant texts of any of the four formats."""
    found: dict[str, str] = {}
    roles = {"system": "sys", "developer": "sys", "user": "usr", "assistant": "ast", "model": "ast"}
    sys_text = _text_of(body.get("system")) or _text_of(body.get("instructions"))
    instruction = body.get("systemInstruction")
    if not sys_text and isinstance(instruction, dict):
        sys_text = _text_of(instruction.get("parts"))
    if sys_text:
        found["sys"] = sys_text
    turns = body.get("messages") or body.get("contents") or body.get("input") or []
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict) or turn.get("type") not in (None, "message"):
            continue
        role = roles.get(str(turn.get("role") or ""))
        text = _text_of(turn.get("content", turn.get("parts")))
        if role and text and role not in found:
            found[role] = text
    return {k: v[:100] for k, v in found.items() if v}


def _fnv64a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def _message_hash(body: Mapping[str, Any]) -> str:
    texts = _first_texts(body)
    if not texts.get("sys") and not texts.get("usr"):
        return ""
    # without the assistant text: the first turn and the later ones share the key
    data = "".join(f"{k}:{texts[k]}\n" for k in ("sys", "usr") if texts.get(k))
    return f"msg:{_fnv64a(data.encode('utf-8')):016x}"


class _HasCredential(Protocol):
    @property
    def credential(self) -> Credential: ...


T = TypeVar("T", bound=_HasCredential)


class SessionAffinity:
    """Bindings of sessions to credential ids.

    Args:
        now: the clock.
        enabled: reads `routing.session-affinity` live.
        ttl: reads `routing.session-affinity-ttl` (seconds) live.
    """

    def __init__(
        self, now: Callable[[], float], enabled: Callable[[], bool], ttl: Callable[[], float]
    ) -> None:
        self._now = now
        self._enabled = enabled
        self._ttl = ttl
        self._bindings: dict[str, tuple[str, float]] = {}

    @staticmethod
    def binding_key(session: str, candidates: Sequence[_HasCredential], model: str) -> str:
        providers = ",".join(sorted({c.credential.provider for c in candidates}))
        return f"{providers}::{session}::{model}"

    def key_for(self, headers: Mapping[str, str], body: Any) -> str:
        """The session key when affinity is on, else ""."""
        return session_key(headers, body) if self._enabled() else ""

    def bound(self, key: str) -> str | None:
        entry = self._bindings.get(key)
        if entry is None:
            return None
        cred_id, expires = entry
        if expires <= self._now():
            del self._bindings[key]
            return None
        return cred_id

    def prefer(self, ordered: list[T], session: str, model: str) -> list[T]:
        """`ordered` with the session's bound credential first (when it is among them)."""
        if not session or not ordered:
            return ordered
        cred_id = self.bound(self.binding_key(session, ordered, model))
        if cred_id is None:
            return ordered
        first = [c for c in ordered if c.credential.id == cred_id]
        return first + [c for c in ordered if c.credential.id != cred_id] if first else ordered

    def bind(self, session: str, ordered: Sequence[T], model: str, served: Credential) -> None:
        """`served` answered this session: bind (or re-bind) it for another TTL."""
        if not session or not ordered:
            return
        key = self.binding_key(session, ordered, model)
        previous = self._bindings.pop(key, None)
        if previous is not None and previous[0] != served.id:
            log.info(
                "session {session} moved from {old} to {new}",
                session=session[:40],
                old=previous[0],
                new=served.id,
            )
        if len(self._bindings) >= MAX_BINDINGS:
            del self._bindings[next(iter(self._bindings))]
        self._bindings[key] = (served.id, self._now() + max(1.0, self._ttl()))

    def bindings(self) -> dict[str, str]:
        """Live bindings (`provider::session::model` -> credential id), for the management view."""
        now = self._now()
        return {k: cid for k, (cid, exp) in self._bindings.items() if exp > now}
