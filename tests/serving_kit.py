"""Run cliproxy's real Site on a loopback port, backed by fake upstreams, for socket tests."""

from __future__ import annotations

import tempfile
from typing import Any

from twisted.internet import defer, reactor, task

from cliproxy.app import build_app
from cliproxy.config import parse_config
from cliproxy.config.watcher import ConfigStore

CLIENT_KEY = "sk-cliproxy-test-9999"


class Proxy:
    """A listening cliproxy: `url`, `app`, `clock` (drives cooldowns), `store`."""

    def __init__(self, config_text: str, clock: Any = None) -> None:
        if "auth-dir:" not in config_text:
            # never the developer's real ~/.cli-proxy-api
            config_text += f"\nauth-dir: {tempfile.mkdtemp(prefix='cliproxy-auth-')}\n"
        self.clock = clock or task.Clock()
        self.store = ConfigStore(parse_config(config_text))
        self.app = build_app(self.store, reactor, clock=self.clock)
        self.site = self.app.site
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    def reconfigure(self, config_text: str) -> None:
        self.store.replace(parse_config(config_text))

    async def stop(self) -> None:
        await defer.maybeDeferred(self.port.stopListening)  # a test may have closed it
        for channel in list(self.site.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()
        await self.app.http.close()


def config_text(*sections: str, keys: bool = True) -> str:
    head = "host: 127.0.0.1\nport: 8317\n"
    if keys:
        head += f"api-keys: [{CLIENT_KEY}]\n"
    return head + "\n".join(sections)


def providers(claude=None, oai=None, gemini=None, codex=None, extra="") -> str:
    """Config text with one API-key entry per fake given, each serving one aliased model."""
    parts = []
    if claude is not None:
        parts.append(
            f"claude-api-key:\n  - api-key: sk-ant-test-1\n    base-url: {claude.url}\n"
            "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
        )
    if oai is not None:
        parts.append(
            "openai-compatibility:\n  - name: fakeoai\n"
            f"    base-url: {oai.url}/v1\n"
            "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
            "    models: [{name: gpt-fake, alias: gpt-fake}]\n"
        )
    if gemini is not None:
        parts.append(
            f"gemini-api-key:\n  - api-key: g-test-1\n    base-url: {gemini.url}\n"
            "    models: [{name: gemini-fake, alias: gemini-fake}]\n"
        )
    if codex is not None:
        parts.append(
            f"codex-api-key:\n  - api-key: sk-codex-test-1\n"
            f"    base-url: {codex.url}/backend-api/codex\n"
            "    models: [{name: gpt-codex-fake, alias: gpt-codex-fake}]\n"
        )
    return config_text(*parts, extra)
