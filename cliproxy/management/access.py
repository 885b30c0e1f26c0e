# -*- test-case-name: tests.management.test_access -*-
"""Who may use `/v0/management` (core.md §6.1).

The client address is the TCP peer, never `X-Forwarded-For` or `X-Real-IP`. The secret
is bcrypt-hashed once; a key that matched is remembered as its SHA-256 so later requests
compare in constant time without running bcrypt again, and bcrypt itself runs in a
thread so a wrong guess never stalls the reactor. Five failures ban a peer for 30 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import bcrypt
from twisted.internet.interfaces import IReactorTime

HASH_PREFIXES = ("$2a$", "$2b$", "$2y$")
MAX_FAILURES = 5
BAN_SECONDS = 30 * 60
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def is_hashed(secret: str) -> bool:
    return secret.startswith(HASH_PREFIXES)


def hash_secret(secret: str) -> str:
    """bcrypt at the library's default cost, as CLIProxyAPI writes it back to the file."""
    return bcrypt.hashpw(secret.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def check_hash(key: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(key.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Denied:
    status: int
    error: str
    counts: bool = False


@dataclass(frozen=True, slots=True)
class NeedsBcrypt:
    """The key must be checked against `hashed` (slow: run it off the reactor)."""

    key: str
    hashed: str


ALLOWED = None


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.999))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class ManagementAccess:
    """The checks, in CLIProxyAPI's order, and the per-peer failure counts.

    Args:
        secret: returns the live `remote-management.secret-key` (plain or bcrypt hash).
        allow_remote: returns the live `remote-management.allow-remote`.
        clock: time for bans.
        environ: where `MANAGEMENT_PASSWORD` is read (it forces allow-remote on).
    """

    def __init__(
        self,
        secret: Callable[[], str],
        allow_remote: Callable[[], bool],
        clock: IReactorTime,
        environ: Mapping[str, str],
    ) -> None:
        self._secret = secret
        self._allow_remote = allow_remote
        self._clock = clock
        self._env_password = environ.get("MANAGEMENT_PASSWORD", "")
        self._hashes: dict[str, str] = {}
        self._verified: dict[str, set[bytes]] = {}
        self._failures: dict[str, tuple[int, float]] = {}

    def enabled(self) -> bool:
        """Whether the routes exist at all (otherwise they answer 404)."""
        return bool(self._secret() or self._env_password)

    def hashed_secret(self) -> str:
        """The configured secret as a bcrypt hash (hashed once per distinct plaintext)."""
        secret = self._secret()
        if not secret or is_hashed(secret):
            return secret
        hashed = self._hashes.get(secret)
        if hashed is None:
            hashed = self._hashes[secret] = hash_secret(secret)
        return hashed

    def check(self, peer: str, key: str) -> Denied | NeedsBcrypt | None:
        """None to admit; `Denied` to refuse; `NeedsBcrypt` to finish with `finish_bcrypt`."""
        now = self._clock.seconds()
        count, until = self._failures.get(peer, (0, 0.0))
        if until > now:
            return Denied(
                403,
                "IP banned due to too many failed attempts. Try again in " + _duration(until - now),
            )
        local = peer in LOCAL_HOSTS
        if not local and not (self._allow_remote() or self._env_password):
            return Denied(403, "remote management disabled")
        hashed = self.hashed_secret()
        if not hashed and not self._env_password:
            return Denied(403, "remote management key not set")
        if not key:
            return self._fail(peer, "missing management key")
        if self._env_password and hmac.compare_digest(
            key.encode("utf-8"), self._env_password.encode("utf-8")
        ):
            self._succeed(peer)
            return ALLOWED
        if not hashed:
            return self._fail(peer, "invalid management key")
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        known = False
        for seen in self._verified.get(hashed, ()):
            known |= hmac.compare_digest(seen, digest)
        if known:
            self._succeed(peer)
            return ALLOWED
        return NeedsBcrypt(key, hashed)

    def finish_bcrypt(self, peer: str, pending: NeedsBcrypt, matched: bool) -> Denied | None:
        if not matched:
            return self._fail(peer, "invalid management key")
        digest = hashlib.sha256(pending.key.encode("utf-8")).digest()
        self._verified.setdefault(pending.hashed, set()).add(digest)
        self._succeed(peer)
        return ALLOWED

    def _fail(self, peer: str, error: str) -> Denied:
        count, _ = self._failures.get(peer, (0, 0.0))
        count += 1
        until = self._clock.seconds() + BAN_SECONDS if count >= MAX_FAILURES else 0.0
        self._failures[peer] = (0 if until else count, until)
        return Denied(401, error, counts=True)

    def _succeed(self, peer: str) -> None:
        self._failures.pop(peer, None)
