"""Upstream providers: one executor per provider kind, and the shared HTTP client.

`executor_for(cred)` picks the executor; `Executor.build` makes the request (pure);
`Executor.send` sends it through `UpstreamHTTP`. `body` and `stream` read the answers.
"""

from cliproxy.upstream.base import (
    Executor,
    UnsupportedAction,
    UpstreamCall,
    UpstreamConfigError,
)
from cliproxy.upstream.registry import NoExecutor, executor_for, register

__all__ = [
    "Executor",
    "NoExecutor",
    "UnsupportedAction",
    "UpstreamCall",
    "UpstreamConfigError",
    "executor_for",
    "register",
]
