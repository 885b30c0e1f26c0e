"""reliability.md §4: management surface (17-22), OAuth and token store (38-41), config
reload (42-45) and lifecycle (46-47). Over real sockets, except where the scenario needs a
non-loopback TCP peer (17, 19): tests reach only loopback, so those use an in-memory
connection from the remote address through the same Site."""

from __future__ import annotations

import json
import os
import socket

import pytest_twisted
from twisted.internet import defer, reactor, task

from cliproxy.config.watcher import ConfigWatcher
from cliproxy.service import Drain
from cliproxy.web.relay import IStreamEnd
from tests.amp.kit import BEARER, amp_config, wire_answer
from tests.fakes import FakeAmp, FakeClaude, FakeOAuth, FakeOpenAI, Reply, Turn, chat_chunks
from tests.oauth.kit import T0, claude_file
from tests.reliability.kit import call, exchange, request_bytes, sse_data
from tests.reliability.test_streaming import until
from tests.serving_kit import CLIENT_KEY, config_text, providers

HI = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-fake", "messages": HI}


# -- management surface ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scenario_17_forwarded_for_never_makes_a_remote_peer_local(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    for header in ("X-Forwarded-For", "X-Real-IP"):
        spoof = {**BEARER, header: "127.0.0.1"}
        a = await wire_answer(proxy.site, "GET", "/api/user", spoof, peer="203.0.113.9")
        assert a.status == 403, header
    forwarded = {**BEARER, "Forwarded": "for=127.0.0.1"}
    a = await wire_answer(proxy.site, "GET", "/api/user", forwarded, peer="203.0.113.9")
    assert a.status == 403
    assert amp.requests == []


@pytest_twisted.ensureDeferred
async def test_scenario_18_evil_origin_preflight_on_management_gets_no_cors(
    start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    a = await call(proxy.url, "OPTIONS", "/api/user", origin="https://evil.example")
    assert a.status == 403
    assert not [h for h in a.headers if h.startswith("access-control-allow")]


@pytest_twisted.ensureDeferred
async def test_scenario_19_mapped_loopback_is_local_and_odd_peers_fail_closed(
    start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer="::ffff:127.0.0.1")
    assert a.status == 200
    for peer in ("0.0.0.0", "203.0.113.9", "2001:db8::1"):
        a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer=peer)
        assert a.status == 403, peer


@pytest_twisted.ensureDeferred
async def test_scenario_20_traversal_never_escapes_the_proxied_prefix_or_skips_auth(
    start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    for path in (
        "/api/user/../../v0/management/config",
        "/api/user/%2e%2e/%2e%2e/v0/management/config",
    ):
        a = await call(proxy.url, "GET", path, authorization="")
        assert a.status in (400, 401, 404), path
    a = await call(proxy.url, "GET", "/threadsX", authorization="")
    assert a.status in (401, 404)  # no /threads auth bypass for a look-alike
    assert not [r for r in amp.requests if "management" in r.path]


@pytest_twisted.ensureDeferred
async def test_scenario_21_no_management_api_to_brute_force(start_proxy):
    """cliproxy serves no /v0/management (reliability.md 1.1 F's ban logic has nothing to
    guard); six wrong keys in a row are six plain 401s and a right key still works."""
    proxy = start_proxy(providers())
    for _ in range(6):
        a = await call(proxy.url, "GET", "/v1/models", authorization="Bearer sk-wrong")
        assert a.status == 401
    a = await call(proxy.url, "GET", "/v0/management/config", authorization="Bearer sk-wrong")
    assert a.status in (401, 404) and a.header("content-type") == "application/json"
    assert (await call(proxy.url, "GET", "/v1/models")).status == 200


@pytest_twisted.ensureDeferred
async def test_scenario_22_management_writes_are_refused_and_config_untouched(
    tmp_path, start_proxy
):
    path = tmp_path / "config.yaml"
    path.write_text(providers())
    before = path.read_bytes()
    proxy = start_proxy(before.decode())
    for body in (b"{}", b'{"value": null}', b'{"value": 3}', b"not json"):
        a = await call(proxy.url, "PUT", "/v0/management/debug", body)
        assert a.status in (400, 404, 405) and a.header("content-type") == "application/json"
    assert path.read_bytes() == before


# -- OAuth / token store ---------------------------------------------------------------------


def oauth_claude(tmp_path, oauth, claude) -> str:
    from tests.oauth.kit import endpoints_yaml

    return config_text(
        f"auth-dir: {tmp_path}\n",
        endpoints_yaml(claude_oauth=oauth, claude_api=claude),
    )


def account(tmp_path, start_fake, start_proxy, expires):
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.add_refresh_token("rt-old")
    claude = start_fake(FakeClaude)
    oauth.access_tokens.add("at-old")
    claude.keys = oauth.access_tokens
    (tmp_path / "claude-u@example.com.json").write_text(
        json.dumps(claude_file("at-old", "rt-old", expires))
    )
    proxy = start_proxy(oauth_claude(tmp_path, oauth, claude))
    proxy.clock.advance(T0)
    return oauth, claude, proxy


CLAUDE_BODY = {"model": "claude-sonnet-4-5-20250929", "messages": HI}


@pytest_twisted.ensureDeferred
async def test_scenario_38_concurrent_requests_on_an_expired_token_refresh_once(
    tmp_path, start_fake, start_proxy
):
    oauth, claude, proxy = account(tmp_path, start_fake, start_proxy, T0 - 60)
    answers = await defer.gatherResults(
        [defer.ensureDeferred(call(proxy.url, "POST", CHAT, CLAUDE_BODY)) for _ in range(20)]
    )
    assert [a.status for a in answers] == [200] * 20
    assert len(oauth.received("POST")) == 1


@pytest_twisted.ensureDeferred
async def test_scenario_39_a_caller_leaving_does_not_abort_the_refresh_others_wait_on(
    tmp_path, start_fake, start_proxy
):
    from tests.oauth.test_serving_oauth import _delayed

    oauth, claude, proxy = account(tmp_path, start_fake, start_proxy, T0 - 60)
    oauth.clock = oauth_clock = task.Clock()
    oauth.script("POST", "/v1/oauth/token", _delayed(oauth, 1.0))
    holder = proxy.app.authdir.holders()[0]
    port = int(proxy.url.rsplit(":", 1)[1])
    leaver = socket.create_connection(("127.0.0.1", port))
    leaver.sendall(request_bytes("POST", CHAT, CLAUDE_BODY))
    stayer = defer.ensureDeferred(call(proxy.url, "POST", CHAT, CLAUDE_BODY))
    await until(lambda: holder.waiting == 2 and bool(oauth_clock.getDelayedCalls()))
    leaver.close()
    await until(lambda: holder.waiting == 1)
    oauth_clock.advance(1.0)
    assert (await stayer).status == 200
    assert len(oauth.received("POST")) == 1


@pytest_twisted.ensureDeferred
async def test_scenario_40_a_broken_token_file_disables_only_that_account(
    tmp_path, start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    (tmp_path / "claude-broken@example.com.json").write_text("{not json")
    proxy = start_proxy(providers(oai=oai, extra=f"auth-dir: {tmp_path}\n"))
    assert (await call(proxy.url, "POST", CHAT, BODY)).status == 200
    assert (tmp_path / "claude-broken@example.com.json").read_text() == "{not json"


@pytest_twisted.ensureDeferred
async def test_scenario_41_corrupt_amp_secrets_warn_and_requests_still_proxy(
    tmp_path, start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    secrets = tmp_path / "secrets.json"
    secrets.write_text("{corrupt")
    text = amp_config(amp.url, key="").replace(
        "ampcode:\n", f"ampcode:\n  secrets-file: {secrets}\n"
    )
    proxy = start_proxy(text)
    a = await call(proxy.url, "GET", "/api/user")
    assert a.status < 500 or a.status == 503


# -- config reload ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scenario_42_a_broken_reload_keeps_the_old_config_serving(
    tmp_path, start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    path = tmp_path / "config.yaml"
    path.write_text(providers(oai=oai))
    proxy = start_proxy(path.read_text())
    clock = task.Clock()
    watcher = ConfigWatcher(proxy.store, str(path), clock, interval=1.0)
    watcher.startService()
    try:
        path.write_text("api-keys: [unterminated\n")
        clock.advance(1)
        assert (await call(proxy.url, "POST", CHAT, BODY)).status == 200
        path.write_text(providers(oai=oai).replace(CLIENT_KEY, "sk-new-key-0000"))
        clock.advance(1)
        a = await call(proxy.url, "POST", CHAT, BODY)
        assert a.status == 401  # the fixed file applies
    finally:
        watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_scenario_43_empty_writes_and_identical_content_do_not_reload(
    tmp_path, start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    path = tmp_path / "config.yaml"
    path.write_text(providers(oai=oai))
    proxy = start_proxy(path.read_text())
    changes = []
    proxy.store.subscribe(lambda old, new: changes.append(new))
    clock = task.Clock()
    watcher = ConfigWatcher(proxy.store, str(path), clock, interval=1.0)
    watcher.startService()
    try:
        path.write_text("")
        clock.advance(1)
        text = providers(oai=oai)
        for _ in range(100):  # a burst of identical saves within one interval
            path.write_text(text)
        os.utime(path, ns=(1, 1))
        clock.advance(1)
        assert changes == []
        assert (await call(proxy.url, "POST", CHAT, BODY)).status == 200
    finally:
        watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_scenario_44_reloaded_model_mapping_applies_to_the_next_request(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    assert (await call(proxy.url, "POST", CHAT, {**BODY, "model": "renamed"})).status == 404
    proxy.reconfigure(providers(oai=oai).replace("alias: gpt-fake}", "alias: renamed}"))
    assert (await call(proxy.url, "POST", CHAT, {**BODY, "model": "renamed"})).status == 200


@pytest_twisted.ensureDeferred
async def test_scenario_45_removing_a_key_lets_its_stream_finish_then_refuses(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    events = chat_chunks(Turn(text="still streaming"), "gpt-fake")
    oai.script("POST", CHAT, Reply(sse=events, chunk_delay=0.05))
    proxy = start_proxy(providers(oai=oai))
    stream = defer.ensureDeferred(call(proxy.url, "POST", CHAT, {**BODY, "stream": True}))
    await until(lambda: oai.requests and oai.last.bytes_sent > 0)
    proxy.reconfigure(providers(oai=oai).replace(CLIENT_KEY, "sk-other-key-1111"))
    a = await stream
    assert sse_data(a.body)[-1] == "[DONE]"
    assert (await call(proxy.url, "POST", CHAT, BODY)).status == 401


# -- lifecycle -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scenario_46_shutdown_with_20_open_streams_ends_each_with_an_error_event(
    start_fake, start_proxy
):
    reactor.suggestThreadPoolSize(32)  # the raw-socket clients each hold a thread
    oai = start_fake(FakeOpenAI)
    first = chat_chunks(Turn(text="hi"), "gpt-fake")[:2]
    for _ in range(20):
        oai.script("POST", CHAT, Reply(sse=first, hang=True))
    proxy = start_proxy(providers(oai=oai))
    streams = [
        defer.ensureDeferred(
            exchange(proxy.url, request_bytes("POST", CHAT, {**BODY, "stream": True}))
        )
        for _ in range(20)
    ]
    await until(lambda: len(proxy.site.active) == 20, timeout=10)
    await until(lambda: all(IStreamEnd(r, None) is not None for r in proxy.site.active), 10)
    port = int(proxy.url.rsplit(":", 1)[1])
    await proxy.port.stopListening()  # the listener closes first
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    clock = task.Clock()
    stopping = Drain(proxy.site, clock, grace=lambda: 10.0).stopService()
    clock.advance(10)
    await stopping
    answers = await defer.gatherResults(streams)
    for a in answers:
        last = json.loads(sse_data(a.body)[-1])
        assert last["error"]["message"].startswith("cliproxy is shutting down")


def test_scenario_47_a_busy_port_exits_1_with_one_line(tmp_path):
    from tests.test_daemon import run_twistd

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = run_twistd(tmp_path, f"host: 127.0.0.1\nport: {port}\nauth-dir: {tmp_path}\n")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in out and "Traceback" not in out
