"""Ambiguous request framing is refused with 400 before it reaches a resource, on both
Twisted lines (Debian's 22.4 and PyPI's latest); ordinary framing keeps working."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.fakes import FakeOpenAI
from tests.security.kit import CHAT, compat_provider, exchange, port_of
from tests.serving_kit import CLIENT_KEY, config_text

HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
    b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
)
CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHAT), CHAT)
SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n"

ATTACKS = {
    "chunked then identity": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    "identity then chunked": b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    "coding list": b"Transfer-Encoding: gzip, chunked\r\n",
    "chunked twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "te with content-length": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "content-length with te": b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "obs-fold": b"Transfer-Encoding: chunked\r\nX-Folded: a\r\n b\r\n",
    "folded te": b"X-A: 1\r\nTransfer-Encoding:\r\n chunked\r\n",
    "bad header name": b"Transfer-Encoding: chunked\r\nX Bad: 1\r\n",
    "space before colon": b"Transfer-Encoding : chunked\r\n",
    "name with slash": b"Transfer-Encoding: chunked\r\nX/Y: 1\r\n",
}


@pytest.fixture
def proxy(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    return start_proxy(config_text(compat_provider(oai))), oai


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest_twisted.ensureDeferred
async def test_ambiguous_framing_is_refused_with_400(proxy, name):
    site, oai = proxy
    answers = await exchange(
        port_of(site), HEAD + ATTACKS[name] + b"\r\n" + CHUNKED_BODY + SMUGGLED
    )
    assert [a.status for a in answers] == [400], name  # and the smuggled request is not read
    assert answers[0].header("connection") == "close"
    assert oai.requests == []


@pytest_twisted.ensureDeferred
async def test_plain_chunked_and_content_length_requests_still_work(proxy):
    site, oai = proxy
    port = port_of(site)
    chunked = await exchange(
        port, HEAD + b"Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n" + CHUNKED_BODY
    )
    sized = await exchange(
        port, HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(CHAT) + CHAT
    )
    assert [a.status for a in chunked + sized] == [200, 200]
    assert len(oai.requests) == 2
