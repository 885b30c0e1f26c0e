"""Raw-socket helpers for the attack tests: bytes in over loopback, parsed answers out."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer, reactor

from tests.amp.kit import raw_connect
from tests.web.httpwire import Answer, parse_answers

CHAT = json.dumps({"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}).encode()


def compat_provider(oai: Any) -> str:
    return (
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {oai.url}/v1\n"
        "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
        "    models: [{name: gpt-fake, alias: gpt-fake}]\n"
    )


def port_of(proxy: Any) -> int:
    return int(proxy.url.rsplit(":", 1)[1])


def http_request(
    method: str, path: str, headers: dict[str, str], body: bytes = b"", host: str | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or 'localhost'}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(port: int, raw: bytes, timeout: float = 5.0) -> list[Answer]:
    """Send `raw` on a fresh loopback connection; the answers once the server closes it."""
    client = await raw_connect(port)
    assert client.transport is not None
    client.transport.write(raw)
    timer = reactor.callLater(timeout, client.transport.abortConnection)
    await client.closed
    if timer.active():
        timer.cancel()
    return parse_answers(client.data)


async def one(port: int, raw: bytes) -> Answer:
    answers = await exchange(port, raw)
    assert len(answers) == 1, answers
    return answers[0]


def sleep(seconds: float) -> defer.Deferred[None]:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)
