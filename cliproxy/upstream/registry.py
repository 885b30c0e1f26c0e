# -*- test-case-name: tests.upstream.test_executors -*-
"""Which executor serves a credential: one shared instance per credential kind."""

from __future__ import annotations

from cliproxy.credentials.model import Credential
from cliproxy.upstream.antigravity import AntigravityExecutor
from cliproxy.upstream.base import Executor
from cliproxy.upstream.claude import ClaudeExecutor
from cliproxy.upstream.claude_oauth import ClaudeOAuthExecutor
from cliproxy.upstream.codex import CodexExecutor
from cliproxy.upstream.codex_oauth import CodexOAuthExecutor
from cliproxy.upstream.gemini import GeminiExecutor
from cliproxy.upstream.gemini_cli import GeminiCLIExecutor
from cliproxy.upstream.kimi import KimiExecutor
from cliproxy.upstream.openai_compat import OpenAICompatExecutor
from cliproxy.upstream.vertex_key import VertexKeyExecutor
from cliproxy.upstream.vertex_sa import VertexServiceAccountExecutor
from cliproxy.upstream.xai import XAIExecutor
from cliproxy.upstream.xai_oauth import XAIOAuthExecutor


class NoExecutor(LookupError):
    """No executor serves this credential kind."""


_BY_KIND: dict[str, Executor] = {}


def register(executor: Executor) -> None:
    """Serve `executor.kinds` with `executor` (replacing any earlier one)."""
    for kind in executor.kinds:
        _BY_KIND[kind] = executor


for _executor in (
    ClaudeExecutor(),
    GeminiExecutor(),
    VertexKeyExecutor(),
    CodexExecutor(),
    OpenAICompatExecutor(),
    XAIExecutor(),
    # auth-dir accounts: kind "oauth", one executor per provider ("oauth:<provider>")
    ClaudeOAuthExecutor(),
    CodexOAuthExecutor(),
    GeminiCLIExecutor(),
    VertexServiceAccountExecutor(),
    KimiExecutor(),
    AntigravityExecutor(),
    XAIOAuthExecutor(),
):
    register(_executor)


def executor_for(cred: Credential) -> Executor:
    """The executor for `cred.kind`.

    Raises:
        NoExecutor: an unknown kind (e.g. an OAuth kind whose executor is not registered).
    """
    try:
        return _BY_KIND.get(f"{cred.kind}:{cred.provider}") or _BY_KIND[cred.kind]
    except KeyError:
        raise NoExecutor(
            f"no upstream executor for credential kind {cred.kind!r} (provider {cred.provider})"
        )
