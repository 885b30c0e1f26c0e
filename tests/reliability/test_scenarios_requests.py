"""reliability.md §4, request validation and client authentication (scenarios 1-16), over
real sockets: cliproxy on 127.0.0.1 in front of fake upstreams."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from tests.fakes import FakeClaude, FakeOpenAI
from tests.reliability.kit import call, exchange, exchange_blocking, parse
from tests.serving_kit import CLIENT_KEY, providers

HI = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"


def limits(**values: float) -> str:
    return "limits:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items())


def raw_post(body: bytes, **headers: str) -> bytes:
    head = {"Host": "127.0.0.1", "Authorization": f"Bearer {CLIENT_KEY}", **headers}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"POST {CHAT} HTTP/1.1\r\n{lines}\r\n".encode() + body


async def wait(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_scenario_01_truncated_json_is_400_without_upstream_call_or_cooldown(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    a = await call(proxy.url, "POST", CHAT, b'{"model": "gpt-fake", "messages": [')
    assert (a.status, a.json()["error"]["type"]) == (400, "invalid_request_error")
    assert "not valid JSON" in a.json()["error"]["message"]
    assert oai.requests == [] and proxy.app.pool.states() == []


@pytest_twisted.ensureDeferred
async def test_scenario_02_wrong_field_types_are_400_naming_the_field(start_fake, start_proxy):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    a = await call(proxy.url, "POST", CHAT, {"model": "gpt-fake", "messages": "hi"})
    assert a.status == 400 and "'messages'" in a.json()["error"]["message"]
    a = await call(proxy.url, "POST", CHAT, {"model": 123, "messages": HI})
    assert a.status == 400 and "'model'" in a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_03_json_is_read_whatever_the_content_type(start_fake, start_proxy):
    """Documented in README ("Errors and limits"): like upstream, the body is parsed as JSON
    whatever Content-Type says, on every route."""
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    body = {"model": "gpt-fake", "messages": HI}
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        a = await call(proxy.url, "POST", CHAT, body, content_type=content_type)
        assert a.status == 200, content_type
    import json

    raw = json.dumps(body).encode()
    a = parse(
        await threads.deferToThread(
            exchange_blocking,
            proxy.url,
            raw_post(raw, **{"Content-Length": str(len(raw)), "Connection": "close"}),
        )
    )
    assert a.status == 200  # no Content-Type at all


@pytest_twisted.ensureDeferred
async def test_scenario_04_body_over_the_cap_is_413_without_reading_the_rest(
    start_fake, start_proxy
):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)) + limits(**{"max-body-size": 4096}))
    head = raw_post(b"", **{"Content-Length": str(200 * 1024 * 1024)})
    a = await exchange(proxy.url, [head, b"x" * 8192])
    assert (a.status, a.reason) == (413, "Request Entity Too Large") or a.status == 413
    assert "4096" in a.body.decode() and not a.timed_out


@pytest_twisted.ensureDeferred
async def test_scenario_05_invalid_utf8_in_a_json_string_is_400(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    body = b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    a = await call(proxy.url, "POST", CHAT, body)
    assert a.status == 400
    assert "not valid JSON" in a.json()["error"]["message"]
    assert oai.requests == []


@pytest_twisted.ensureDeferred
async def test_scenario_06_huge_integer_round_trips_byte_exact(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(providers(claude=claude))
    tool_use = {"type": "tool_use", "id": "t1", "name": "f", "input": {"n": 0}}
    body = {
        "model": "claude-fake",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
        ],
    }
    import json

    raw = json.dumps(body).replace('"n": 0', '"n": 12345678901234567890').encode()
    a = await call(proxy.url, "POST", "/v1/messages", raw)
    assert a.status == 200
    assert b"12345678901234567890" in claude.last.raw_body


@pytest_twisted.ensureDeferred
async def test_scenario_07_short_body_times_out_408_and_bad_lengths_are_400(
    start_fake, start_proxy
):
    proxy = start_proxy(
        providers(oai=start_fake(FakeOpenAI)) + limits(**{"body-timeout-seconds": 0.3})
    )
    a = await exchange(proxy.url, raw_post(b"12345", **{"Content-Length": "10"}))
    assert (a.status, a.reason) == (408, "Request Timeout")
    for bad in ("-1", "+5", "0x10"):
        a = await exchange(proxy.url, raw_post(b"{}", **{"Content-Length": bad}))
        assert a.status == 400, bad
    two = raw_post(b"{}", **{"Content-Length": "2"}).replace(
        b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1
    )
    assert (await exchange(proxy.url, two)).status == 400


@pytest_twisted.ensureDeferred
async def test_scenario_08_cl_with_te_and_bad_te_never_smuggle_a_request(start_fake, start_proxy):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    smuggled = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    both = raw_post(
        smuggled, **{"Content-Length": str(len(smuggled)), "Transfer-Encoding": "chunked"}
    )
    out = await threads.deferToThread(exchange_blocking, proxy.url, both, 3.0)
    assert out.count(b"HTTP/1.1 ") == 1  # one answer: /smuggled was never served
    assert parse(out).status == 400 or b"connection: close" in out.lower()
    for te in ("gzip", "chunked, chunked"):
        a = await exchange(proxy.url, raw_post(b"0\r\n\r\n", **{"Transfer-Encoding": te}))
        assert a.status == 400, te


@pytest_twisted.ensureDeferred
async def test_scenario_09_slowloris_gets_408_and_others_are_served_meanwhile(start_proxy):
    proxy = start_proxy(providers() + limits(**{"header-timeout-seconds": 1}))
    slow = defer.ensureDeferred(exchange(proxy.url, [b"GET /healthz HTTP/1.1\r\nHo"], 5.0))
    for _ in range(5):
        healthy = await call(proxy.url, "GET", "/healthz")
        assert healthy.status == 200
        # served while the slow client was still sending: its 408 has not come yet
        assert not slow.called
    answer = await slow
    assert (answer.status, answer.reason) == (408, "Request Timeout")


@pytest_twisted.ensureDeferred
async def test_scenario_10_header_floods_are_431_or_400(start_proxy):
    proxy = start_proxy(providers())
    many = "".join(f"X-H{i}: v\r\n" for i in range(10000)).encode()
    a = await exchange(proxy.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert a.status in (400, 431)
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    a = await exchange(proxy.url, big)
    assert a.status in (400, 431)


@pytest_twisted.ensureDeferred
async def test_scenario_11_unknown_model_is_404_naming_it(start_fake, start_proxy):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    a = await call(proxy.url, "POST", CHAT, {"model": "does-not-exist", "messages": HI})
    assert a.status == 404
    assert "unknown model 'does-not-exist'" in a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_12_odd_thinking_suffixes_never_500(start_fake, start_proxy):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    for model in ("gpt-fake()", "gpt-fake(high", "gpt-fake((x))", "gpt-fake(8192)"):
        a = await call(proxy.url, "POST", CHAT, {"model": model, "messages": HI})
        assert a.status < 500 and a.header("content-type") == "application/json", model


@pytest_twisted.ensureDeferred
async def test_scenario_13_gemini_paths_without_a_model_or_method_are_400(start_proxy):
    proxy = start_proxy(providers())
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    a = await call(proxy.url, "POST", "/v1beta/models/gemini-fake:", body)
    assert a.status == 400 and "unknown method" in a.json()["error"]["message"]
    a = await call(proxy.url, "POST", "/v1beta/models/:generateContent", body)
    assert a.status == 400 and "model is missing" in a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_scenario_14_client_keys_in_every_place_and_never_forwarded(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    body = {"model": "gpt-fake", "messages": HI}
    a = await call(proxy.url, "POST", CHAT, body, authorization="")
    assert a.status == 401 and "Missing API key" in a.json()["error"]["message"]
    a = await call(proxy.url, "POST", CHAT, body, authorization="Bearer sk-wrong")
    assert a.status == 401 and "Invalid API key" in a.json()["error"]["message"]
    places = [
        ("", {"x-api-key": CLIENT_KEY}),
        ("", {"x-goog-api-key": CLIENT_KEY}),
        (f"?key={CLIENT_KEY}", {}),
        (f"?auth_token={CLIENT_KEY}", {}),
    ]
    for query, headers in places:
        a = await call(proxy.url, "POST", CHAT + query, body, authorization="", **headers)
        assert a.status == 200, (query, headers)
        assert CLIENT_KEY not in repr(oai.last.headers) + str(oai.last.uri)


def test_scenario_15_example_keys_on_a_public_address_refuse_to_start(tmp_path):
    from twisted.internet.testing import MemoryReactorClock

    from cliproxy.tap import Options, makeService

    path = tmp_path / "config.yaml"
    path.write_text(
        f"host: 0.0.0.0\nport: 8317\napi-keys: [your-api-key-1]\nauth-dir: {tmp_path}\n"
    )
    options = Options()
    options.parseOptions(["--config", str(path)])
    try:
        makeService(options, MemoryReactorClock())
    except SystemExit as e:
        assert "example key 'your-api-key-1'" in str(e.code)
    else:
        raise AssertionError("started with an example key on all interfaces")


@pytest_twisted.ensureDeferred
async def test_scenario_16_wrong_keys_of_any_length_take_the_same_time(start_proxy):
    """Constant-time compare: every wrong key, near or far, long or short, gets the same
    401 (timing is measured in bench/, not asserted here), and the comparison runs every
    offered key against every allowed key with hmac.compare_digest, never stopping early."""
    import inspect

    from cliproxy.web.guard import match_key

    # the key-guess lockout (issue 14) would answer 429 after 20; this scenario is the compare
    proxy = start_proxy(providers() + "limits:\n  key-failures-per-minute: 1000\n")
    near = CLIENT_KEY[:-1] + "X"  # all but the last character right, same length
    keys = {"near": near, "far": "Y" * len(CLIENT_KEY), "short": "sk-1"}
    bodies = set()
    for _ in range(3):
        for key in keys.values():
            a = await call(proxy.url, "GET", "/v1/models", authorization=f"Bearer {key}")
            assert a.status == 401
            bodies.add(a.body)
    assert len(bodies) == 1  # nothing in the answer tells a near key from a far one
    source = inspect.getsource(match_key)
    assert "hmac.compare_digest" in source and "break" not in source and "return key" not in source
    assert match_key([near, CLIENT_KEY], [CLIENT_KEY]) == CLIENT_KEY
    assert match_key([near], [CLIENT_KEY]) is None
