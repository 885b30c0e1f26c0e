"""Helpers for the Amp tests: configs, a proxy with isolated secrets, raw requests, logs."""

from __future__ import annotations

import json
from typing import Any

import treq
from twisted.internet import defer, protocol, reactor
from twisted.logger import formatEvent

from cliproxy.amp.secrets import FileSecret, MappedSecret, MultiSourceSecret
from tests.fakes.server import wait_until
from tests.serving_kit import CLIENT_KEY, config_text
from tests.web.httpwire import HalfCloseTransport, Wire, parse_answers, request_bytes

UPSTREAM_KEY = "amp-upstream-key-7777"
BEARER = {"Authorization": f"Bearer {CLIENT_KEY}"}


def amp_block(url: str = "", key: str = UPSTREAM_KEY, extra: str = "") -> str:
    lines = ["ampcode:", f'  upstream-url: "{url}"', f'  upstream-api-key: "{key}"']
    if extra:
        lines += ["  " + line for line in extra.strip("\n").split("\n")]
    return "\n".join(lines) + "\n"


def amp_config(
    url: str = "",
    *,
    key: str = UPSTREAM_KEY,
    extra: str = "",
    providers: str = "",
    keys: bool = True,
) -> str:
    return config_text(providers, amp_block(url, key, extra), keys=keys)


def claude_provider(
    fake: Any, models: str = "[{name: claude-fake-1, alias: claude-fake}]", prefix: str = ""
) -> str:
    text = (
        f"claude-api-key:\n  - api-key: sk-ant-test-1\n    base-url: {fake.url}\n"
        f"    models: {models}\n"
    )
    if prefix:
        text += f"    prefix: {prefix}\n"
    return text


def openai_provider(
    fake: Any, models: str = "[{name: gpt-fake, alias: gpt-fake}]", prefix: str = ""
) -> str:
    text = (
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {fake.url}/v1\n"
        "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
        f"    models: {models}\n"
    )
    if prefix:
        text += f"    prefix: {prefix}\n"
    return text


def gemini_provider(fake: Any, models: str = "[{name: gemini-fake, alias: gemini-fake}]") -> str:
    return (
        f"gemini-api-key:\n  - api-key: g-test-1\n    base-url: {fake.url}\n    models: {models}\n"
    )


def codex_provider(fake: Any, models: str) -> str:
    return (
        f"codex-api-key:\n  - api-key: sk-codex-test-1\n"
        f"    base-url: {fake.url}/backend-api/codex\n    models: {models}\n"
    )


def make_app(text: str = "host: 127.0.0.1\n") -> Any:
    """An App (nothing listening) for module-level tests."""
    from cliproxy.app import build_app
    from cliproxy.config import parse_config

    return build_app(parse_config(text), reactor)


def make_core(text: str = "host: 127.0.0.1\n") -> Any:
    """What a new AmpModule is built from, for module-level tests."""
    return make_app(text).amp.core


def isolate_secrets(module: Any, tmp_path: Any, environ: dict | None = None) -> None:
    """Point the module's key sources at `environ` and a secrets file under `tmp_path`."""
    file = FileSecret(str(tmp_path / "secrets.json"), 300, now=module.core.reactor.seconds)
    module.file_secret = file
    module.secrets = MappedSecret(
        MultiSourceSecret(module.settings.upstream_api_key, environ=environ or {}, file=file),
        module.settings.upstream_api_keys,
    )


async def call(method: str, url: str, *, headers=None, body=None, json_body=None, pool=None):
    """(status, headers, body bytes) of one request through treq."""
    h = dict(headers or {})
    data = body
    if json_body is not None:
        data = json.dumps(json_body).encode()
        h.setdefault("Content-Type", "application/json")
    resp = await treq.request(method, url, headers=h, data=data, pool=pool)
    content = await resp.content()
    return resp.code, resp.headers, content


class PeerWire(Wire):
    """A `Wire` whose TCP peer is any `IAddress` (IPv6, UNIX, nonsense)."""

    def __init__(self, site: Any, address: Any) -> None:
        self.site = site
        self.transport = HalfCloseTransport()
        self.transport.peerAddr = address
        self.channel = site.buildProtocol(address)
        self.channel.makeConnection(self.transport)


def peer_address(peer: Any) -> Any:
    from twisted.internet.address import IPv4Address, IPv6Address

    if not isinstance(peer, str):
        return peer
    if ":" in peer:
        return IPv6Address("TCP", peer.strip("[]"), 54321)
    return IPv4Address("TCP", peer, 54321)


async def wire_answer(
    site: Any,
    method: str,
    path: str,
    headers=None,
    body=None,
    peer: Any = "127.0.0.1",
    timeout: float = 3.0,
):
    """One request through an in-memory connection from `peer`, the answer awaited."""
    wire = PeerWire(site, peer_address(peer))
    wire.send(request_bytes(method, path, headers, body))

    def complete() -> bool:
        raw = wire.transport.value()
        if not raw:
            return False
        answers = parse_answers(raw)
        if not answers:
            return False
        a = answers[0]
        if a.header("transfer-encoding") == "chunked":
            return raw.endswith(b"0\r\n\r\n")
        return True

    await wait_until(complete, timeout)
    return wire.answers()[0]


class RawClient(protocol.Protocol):
    """A bare TCP client: everything received lands in `data`."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason=None) -> None:
        if not self.closed.called:
            self.closed.callback(None)


async def raw_connect(port: int, host: str = "127.0.0.1") -> RawClient:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    client = RawClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, host, port), client)
    return client


def messages(events: Any) -> list[str]:
    return [formatEvent(e) for e in events]
