"""Usage statistics (§7) and /metrics after real calls through a fake upstream."""

from __future__ import annotations

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeOpenAI
from tests.management.kit import config_file


def _compat(fake) -> str:
    return (
        "usage-statistics-enabled: true\n"
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {fake.url}/v1\n"
        "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
        "    models: [{name: gpt-fake, alias: gpt-fake}]\n"
    )


async def _chat(s) -> int:
    body = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
    response = await treq.post(s.url + "/v1/chat/completions", json=body)
    await response.content()
    return response.code


@pytest_twisted.ensureDeferred
async def test_usage_views_count_each_upstream_call(tmp_path, served_factory, start_fake):
    fake = start_fake(FakeOpenAI)
    s = served_factory(config_file(tmp_path, _compat(fake)))
    assert await _chat(s) == 200
    assert await _chat(s) == 200
    status, body, _ = await s.call("GET", "/usage")
    usage = body["usage"]
    assert usage["total_requests"] == 2 and usage["failure_count"] == 0
    assert usage["apis"]["-"]["models"]["gpt-fake"]["total_requests"] == 2
    assert usage["total_tokens"] > 0
    status, queued, _ = await s.call("GET", "/usage-queue?count=5")
    assert status == 200 and len(queued) == 2 and queued[0]["provider"] == "fakeoai"
    assert (await s.call("GET", "/usage-queue"))[1] == []
    status, body, _ = await s.call("GET", "/api-key-usage")
    [(name, entry)] = body["fakeoai"].items()
    assert entry["success"] == 2 and name.endswith("|sk-oai-test-1")


@pytest_twisted.ensureDeferred
async def test_metrics_exposition_parses_and_counts(tmp_path, served_factory, start_fake):
    fake = start_fake(FakeOpenAI)
    s = served_factory(config_file(tmp_path, _compat(fake)))
    assert await _chat(s) == 200
    response = await treq.get(s.url + "/metrics")
    assert response.code == 200
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    for name in (
        "cliproxy_requests",
        "cliproxy_request_duration_seconds",
        "cliproxy_time_to_first_token_seconds",
        "cliproxy_tokens",
        "cliproxy_upstream_errors",
        "cliproxy_credentials",
        "cliproxy_amp_requests",
        "cliproxy_open_streams",
        "cliproxy_reloads",
        "cliproxy_token_refreshes",
    ):
        assert name in families, name
    [sample] = [x for x in families["cliproxy_requests"].samples if x.name.endswith("_total")]
    assert sample.labels == {
        "route": "local",
        "provider": "fakeoai",
        "model": "gpt-fake",
        "status": "200",
    }
    assert sample.value == 1
    tokens = {
        x.labels["direction"]: x.value
        for x in families["cliproxy_tokens"].samples
        if x.name.endswith("_total")
    }
    assert tokens["input"] > 0
    creds = {
        (x.labels["provider"], x.labels["state"]): x.value
        for x in families["cliproxy_credentials"].samples
    }
    assert creds[("fakeoai", "ready")] == 1


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest_twisted.ensureDeferred
async def test_latency_ttft_open_streams_and_alias_after_a_stream(
    tmp_path, served_factory, start_fake
):
    fake = start_fake(FakeOpenAI)
    body = _compat(fake).replace("alias: gpt-fake", "alias: my-alias")
    s = served_factory(config_file(tmp_path, body))
    ask = {"model": "my-alias", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    response = await treq.post(s.url + "/v1/chat/completions", json=ask)
    assert response.code == 200 and b"[DONE]" in await response.content()
    assert fake.requests[-1].json["model"] == "gpt-fake"
    families = _families(await (await treq.get(s.url + "/metrics")).text())
    for name in ("cliproxy_request_duration_seconds", "cliproxy_time_to_first_token_seconds"):
        [count] = [x for x in families[name].samples if x.name.endswith("_count")]
        assert count.labels == {"provider": "fakeoai"} and count.value == 1, name
    assert families["cliproxy_open_streams"].samples[0].value == 0
    [queued] = (await s.call("GET", "/usage-queue?count=5"))[1]
    assert queued["model"] == "gpt-fake" and queued["alias"] == "my-alias"
    assert queued["latency_ms"] >= queued["ttft_ms"] >= 0
