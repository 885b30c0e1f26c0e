"""The composition root and the house rules issue 11 set: one typed build, nothing attached
afterwards, Amp's provider routes as a Resource subtree over the same endpoint objects,
Twisted internals only in cliproxy/twisted_compat.py, failures logged with tracebacks."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.logger import capturedLogs

from cliproxy.amp.routes import AmpCall
from cliproxy.app import App, build_app
from cliproxy.config import parse_config
from cliproxy.web.endpoints import Messages
from cliproxy.web.guard import KeyGuard
from cliproxy.web.http import CliproxySite
from tests.fakes import FakeClaude
from tests.serving_kit import CLIENT_KEY, providers

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "host: 127.0.0.1\nport: 8317\napi-keys: [k-1234]\nauth-dir: {auth}\n"


def make(tmp_path) -> App:
    return build_app(parse_config(CONFIG.format(auth=tmp_path)), reactor)


def test_build_app_returns_a_frozen_typed_record(tmp_path):
    app = make(tmp_path)
    fields = {f.name for f in dataclasses.fields(App)}
    assert {"store", "http", "pool", "catalog", "router", "amp", "root", "site"} <= fields
    for name in fields:
        assert getattr(app, name) is not None, name
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.site = None  # type: ignore[misc]
    assert isinstance(app.site, CliproxySite) and app.site.resource is app.root
    assert app.config is app.store.current and app.registry is app.catalog.registry
    # nothing is attached to the Site after construction
    assert not hasattr(app.site, "app") and not hasattr(app.site, "draining")


def test_reload_swaps_an_immutable_registry(tmp_path):
    app = make(tmp_path)
    before = app.registry
    app.store.replace(parse_config(CONFIG.format(auth=tmp_path) + "ws-auth: false\n"))
    assert app.registry is not before  # a new snapshot, the old one untouched


class _Req:
    """Just enough of a request for getChild walks (method and remaining path)."""

    def __init__(self, method: bytes, postpath: list[bytes]) -> None:
        self.method = method
        self.postpath = postpath
        self.prepath: list[bytes] = []


def walk(root, path: str, method: bytes = b"POST"):
    segments = [s.encode() for s in path.strip("/").split("/")]
    req = _Req(method, segments[:])
    resource = root
    while req.postpath and not resource.isLeaf:
        seg = req.postpath.pop(0)
        req.prepath.append(seg)
        resource = resource.getChildWithDefault(seg, req)
    return resource


def test_amp_provider_routes_are_a_getchild_walk_onto_the_v1_endpoints(tmp_path):
    app = make(tmp_path)
    local = walk(app.root, "/v1/messages")
    assert isinstance(local, KeyGuard) and isinstance(local.wrapped, Messages)
    for path in ("/api/provider/anthropic/v1/messages", "/api/provider/anthropic/messages"):
        amp = walk(app.root, path)
        assert isinstance(amp, KeyGuard), path
        assert isinstance(amp.wrapped, AmpCall), path
        assert isinstance(amp.wrapped.endpoint, Messages)
    chat = walk(app.root, "/api/provider/openai/v1/chat/completions")
    assert isinstance(chat, KeyGuard) and isinstance(chat.wrapped, AmpCall)
    # one endpoint object serves /v1/chat/completions and Amp's alias
    assert chat.wrapped.endpoint is walk(app.root, "/v1/chat/completions").wrapped


def test_every_test_case_name_header_names_a_real_test_module():
    missing = []
    for path in [*ROOT.joinpath("cliproxy").rglob("*.py"), *ROOT.joinpath("twisted").rglob("*.py")]:
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        found = re.search(r"test-case-name:\s*([\w.]+)", first[0]) if first else None
        if found and not (ROOT / (found.group(1).replace(".", "/") + ".py")).exists():
            missing.append(f"{path.relative_to(ROOT)} -> {found.group(1)}")
    assert missing == []


#: private names of Twisted's own objects that cliproxy used once (issue 11)
TWISTED_PRIVATE = (
    "_receivedHeaderSize",
    "_dataBuffer",
    "_disconnected",
    "_parsePOSTFormSubmission",
    "_buffer",
    "_networkProducer",
    "_transferDecoder",
    "_handlingRequest",
)


def test_twisted_internals_only_in_the_compat_module():
    offenders = []
    for path in ROOT.joinpath("cliproxy").rglob("*.py"):
        if path.name == "twisted_compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        for name in TWISTED_PRIVATE:
            # `self._buffer` is the project's own; `channel._buffer` would be Twisted's
            if re.search(rf"(?<!self)\.{name}\b|[\"']{name}[\"']", text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
        if re.search(r"from twisted[\w.]*\._\w+ import|import twisted[\w.]*\._\w+", text):
            offenders.append(f"{path.relative_to(ROOT)}: private Twisted module")
    assert offenders == []


class _BrokenMessages(Messages):
    """A handler with a bug in its answer path (what a translation bug looks like)."""

    def wrap_json(self, body: bytes) -> bytes:
        raise ZeroDivisionError("a bug in the handler")


@pytest_twisted.ensureDeferred
async def test_a_failure_inside_a_handler_reaches_the_log_with_its_traceback(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(claude=claude))
    site = CliproxySite(_BrokenMessages(proxy.app.backend), lambda: proxy.app.config.limits)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        body = {
            "model": "claude-fake",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        }
        with capturedLogs() as events:
            resp = await treq.post(
                f"http://127.0.0.1:{port.getHost().port}/",
                json.dumps(body).encode(),
                headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
            )
            answer = json.loads(await resp.content())
    finally:
        await port.stopListening()
    assert resp.code == 500 and answer["type"] == "error"
    assert "see its log" in answer["error"]["message"]
    failures = [e for e in events if "log_failure" in e]
    assert failures, events
    text = failures[0]["log_failure"].getTraceback()
    assert "ZeroDivisionError: a bug in the handler" in text and "wrap_json" in text
