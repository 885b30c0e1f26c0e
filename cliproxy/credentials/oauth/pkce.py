# -*- test-case-name: tests.oauth.test_login_units -*-
"""The random values of one login: `state` and a PKCE S256 pair (core.md §3.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7636 §3)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """16 random bytes, hex-encoded: binds the callback to this login."""
    return secrets.token_hex(16)


def challenge_of(verifier: str) -> str:
    """The S256 code challenge of `verifier`."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two text secrets (state values)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class PKCE:
    """A verifier (96 random bytes, base64url: 128 characters) and its S256 challenge."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls) -> PKCE:
        verifier = b64url(secrets.token_bytes(96))
        return cls(verifier, challenge_of(verifier))
