"""The model catalog refresh: a loopback catalog server, the proxy's /v1/models, bad documents."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import task

from cliproxy.catalog_refresh import CatalogRefresher
from cliproxy.registry.catalog import load_catalog
from cliproxy.registry.remote_catalog import CatalogDocumentError, catalog_from_document
from tests.fakes import FakeUpstream, Reply
from tests.oauth.test_serving_oauth import get
from tests.serving_kit import config_text

NEW = {
    "id": "claude-opus-5",
    "object": "model",
    "created": 1790000000,
    "owned_by": "anthropic",
    "type": "claude",
    "display_name": "Claude Opus 5",
    "context_length": 400000,
    "max_completion_tokens": 128000,
    "thinking": {"min": 1024, "max": 128000, "zero_allowed": True, "levels": ["low", "high"]},
}


def document(*extra):
    """The shipped claude section in CLIProxyAPI's JSON shape, plus `extra` entries."""
    entries = [
        {
            "id": s.id,
            "created": s.created,
            "owned_by": s.owned_by,
            "display_name": s.display_name,
            "context_length": s.context,
            "max_completion_tokens": s.output,
        }
        for s in load_catalog().section("claude")
    ]
    return {"claude": entries + list(extra)}


def test_a_document_replaces_only_its_sections():
    base = load_catalog()
    new = catalog_from_document(document(NEW), base)
    assert [s.id for s in new.section("claude")][-1] == "claude-opus-5"
    assert new.find("claude-opus-5").context == 400000
    assert new.section("gemini") == base.section("gemini")


@pytest.mark.parametrize(
    "doc, field",
    [
        ([], "JSON object"),
        ({"claude": "x"}, "claude: expected a list"),
        ({"claude": [dict(NEW, context_length=-1)]}, "claude[0].context_length"),
        ({"claude": [dict(NEW, id="")]}, "claude[0].id"),
        ({"claude": [dict(NEW, thinking={"max": "lots"})]}, "claude[0].thinking.max"),
        ({"claude": []}, "lists no models"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(doc, field):
    with pytest.raises(CatalogDocumentError, match=field.replace("[", r"\[").replace("]", r"\]")):
        catalog_from_document(doc, load_catalog())


def _config(server, interval="2s"):
    return config_text(
        "claude-api-key:\n  - api-key: sk-ant-1\n",
        f"model-catalog:\n  url: {server.url}/models.json\n  refresh-interval: {interval}\n",
    )


async def _ids(proxy):
    code, raw = await get(proxy, "/v1/models")
    assert code == 200
    return {m["id"] for m in json.loads(raw)["data"]}


@pytest_twisted.ensureDeferred
async def test_a_new_model_appears_without_a_restart_and_broken_documents_change_nothing(
    start_fake, start_proxy
):
    server = start_fake(FakeUpstream)
    server.default("GET", "/models.json", Reply(json=document()))
    proxy = start_proxy(_config(server))
    clock = task.Clock()
    refresher = CatalogRefresher(
        proxy.app.catalog, proxy.app.http, clock, lambda: proxy.store.current, environ={}
    )
    refresher.startService()
    try:
        await server.wait_requests(1)
        await server.wait_for(lambda: refresher._running is None)
        assert "claude-opus-5" not in await _ids(proxy)
        server.default("GET", "/models.json", Reply(json=document(NEW)))
        clock.advance(2)
        await server.wait_requests(2)
        await server.wait_for(lambda: refresher._running is None)
        assert "claude-opus-5" in await _ids(proxy)
        applied = refresher.refreshes
        for broken in (
            Reply(body=b"<html><body>rate limited</body></html>", content_type="text/html"),
            Reply(body=json.dumps(document())[:-40].encode()),
            Reply(json={"claude": [dict(NEW, max_completion_tokens=-5)]}),
            Reply(status=503, json={"error": "busy"}),
        ):
            server.default("GET", "/models.json", broken)
            before = len(server.requests)
            clock.advance(2)
            await server.wait_requests(before + 1)
            await server.wait_for(lambda: refresher._running is None)
            assert "claude-opus-5" in await _ids(proxy)
        assert refresher.refreshes == applied
    finally:
        refresher.stopService()


@pytest_twisted.ensureDeferred
async def test_disabled_refresh_fetches_nothing(start_fake, start_proxy):
    server = start_fake(FakeUpstream)
    text = _config(server).replace("  refresh-interval: 2s\n", "  enabled: false\n")
    proxy = start_proxy(text)
    clock = task.Clock()
    refresher = CatalogRefresher(
        proxy.app.catalog, proxy.app.http, clock, lambda: proxy.store.current, environ={}
    )
    refresher.startService()
    clock.advance(3 * 3600)
    refresher.stopService()
    assert server.requests == []
