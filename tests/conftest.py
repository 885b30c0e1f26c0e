"""Shared fixtures: fake upstreams started on 127.0.0.1 and stopped after each test."""

import os

import pytest
import pytest_twisted
from hypothesis import settings

from tests.fakes import (
    FakeAmp,
    FakeClaude,
    FakeCloudCode,
    FakeCodex,
    FakeGemini,
    FakeOAuth,
    FakeOpenAI,
    FakeUpstream,
)

# Property tests check behaviour, not speed (speed is measured in bench/). Hypothesis's default
# 200 ms deadline per example made a full parallel-loaded run fail now and then ("Flaky": an
# example ran past the deadline once and not on replay), which is what made
# test_loader_builds_what_safe_load_builds_and_knows_the_lines fail once in a full run.
# No test fetches the model catalog from the internet (daemons started by tests inherit
# this); tests/test_catalog_refresh.py serves one on loopback and turns it back on.
os.environ["CLIPROXY_LOCAL_MODEL"] = "1"

settings.register_profile("cliproxy", deadline=None, print_blob=True)
settings.load_profile("cliproxy")


@pytest_twisted.async_yield_fixture
async def start_fake():
    """`start_fake(FakeClaude, keys={"k"})` -> a listening fake, stopped at teardown."""
    started = []

    def start(cls=FakeUpstream, **kwargs):
        fake = cls(**kwargs)
        fake.listen()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


@pytest.fixture
def fake_upstream(start_fake):
    return start_fake(FakeUpstream)


@pytest.fixture
def fake_claude(start_fake):
    return start_fake(FakeClaude)


@pytest.fixture
def fake_openai(start_fake):
    return start_fake(FakeOpenAI)


@pytest.fixture
def fake_gemini(start_fake):
    return start_fake(FakeGemini)


@pytest.fixture
def fake_codex(start_fake):
    return start_fake(FakeCodex)


@pytest.fixture
def fake_cloudcode(start_fake):
    return start_fake(FakeCloudCode)


@pytest.fixture
def fake_amp(start_fake):
    return start_fake(FakeAmp)


@pytest.fixture
def fake_oauth(start_fake):
    return start_fake(FakeOAuth)


@pytest.fixture
def http_pool():
    """A non-persistent treq connection pool, so no idle socket outlives the test."""
    from twisted.internet import reactor
    from twisted.web.client import HTTPConnectionPool

    return HTTPConnectionPool(reactor, persistent=False)


@pytest_twisted.async_yield_fixture
async def start_proxy():
    """`start_proxy(config_text)` -> a listening cliproxy (tests/serving_kit.Proxy)."""
    from tests.serving_kit import Proxy

    started = []

    def start(text, clock=None):
        proxy = Proxy(text, clock)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        await proxy.stop()
