"""A cliproxy serving a config *file* on loopback, and a small management client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor, task

from cliproxy.app import build_app
from cliproxy.config import load_config
from cliproxy.config.watcher import ConfigStore

SECRET = "mgmt-secret-123456"


def config_file(
    tmp: Path, body: str = "", secret: str = SECRET, panel_release: str | None = None
) -> Path:
    """A config file in `tmp`; the official panel is fetched only from `panel_release`
    (a loopback fake), never from the network."""
    auth = tmp / "auth"
    auth.mkdir(exist_ok=True)
    panel = (
        "  disable-auto-update-panel: true\n"
        if panel_release is None
        else f"  panel-github-repository: {json.dumps(panel_release)}\n"
    )
    text = (
        "# the user's own comment\n"
        "host: 127.0.0.1\n"
        "port: 8317\n"
        f"auth-dir: {auth}\n"
        "remote-management:\n"
        "  allow-remote: false\n"
        + panel
        + f"  secret-key: {json.dumps(secret)}  # keep me\n"
        + body
    )
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


class Served:
    """A listening cliproxy over `path`; `call()` speaks to /v0/management."""

    def __init__(self, path: Path, environ: dict[str, str] | None = None) -> None:
        self.path = path
        self.clock = task.Clock()
        self.store = ConfigStore(load_config(str(path)))
        self.app = build_app(self.store, reactor, clock=self.clock, environ=environ or {})
        self.port = reactor.listenTCP(0, self.app.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = SECRET,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        url = self.url + "/v0/management" + path
        response = await treq.request(method, url, data=data, headers=hdrs)
        content = await response.content()
        try:
            parsed: Any = json.loads(content)
        except ValueError:
            parsed = content
        return response.code, parsed, response.headers

    async def stop(self) -> None:
        await self.port.stopListening()
        for channel in list(self.app.site.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()
        await self.app.http.close()


@pytest_twisted.async_yield_fixture
async def served_factory():
    started: list[Served] = []

    def start(path: Path, environ: dict[str, str] | None = None) -> Served:
        s = Served(path, environ)
        started.append(s)
        return s

    yield start
    for s in started:
        await s.stop()
