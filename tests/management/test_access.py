"""§6.1 access control against a real listening server."""

from __future__ import annotations

import pytest_twisted

from tests.management.kit import SECRET, config_file


@pytest_twisted.ensureDeferred
async def test_routes_answer_404_while_no_secret_is_set(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, secret=""))
    status, body, _ = await s.call("GET", "/config")
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_right_key_admits_and_every_answer_carries_the_version(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    status, body, headers = await s.call("GET", "/debug")
    assert status == 200 and body == {"debug": False}
    assert headers.getRawHeaders("X-CPA-VERSION")
    # the second time is served from the verified-key cache
    status, _, _ = await s.call("GET", "/debug", key=None, headers={"X-Management-Key": SECRET})
    assert status == 200


@pytest_twisted.ensureDeferred
async def test_missing_and_wrong_keys_are_401_and_five_failures_ban_the_peer(
    tmp_path, served_factory
):
    s = served_factory(config_file(tmp_path))
    status, body, _ = await s.call("GET", "/debug", key=None)
    assert (status, body) == (401, {"error": "missing management key"})
    for _ in range(4):
        status, body, _ = await s.call("GET", "/debug", key="wrong")
        assert (status, body) == (401, {"error": "invalid management key"})
    status, body, _ = await s.call("GET", "/debug")
    assert status == 403 and body["error"].startswith("IP banned")
    s.clock.advance(30 * 60 + 1)
    status, _, _ = await s.call("GET", "/debug")
    assert status == 200


@pytest_twisted.ensureDeferred
async def test_remote_peer_with_spoofed_forwarded_for_is_denied(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    # the TCP peer is loopback, so prove the header is ignored the other way round: a
    # remote-looking forwarded address does not change a local peer's verdict, and a
    # local-looking one cannot help a remote peer (checked on the access object).
    status, _, _ = await s.call("GET", "/debug", headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    from cliproxy.management.access import Denied, ManagementAccess

    access = ManagementAccess(lambda: SECRET, lambda: False, s.clock, {})
    verdict = access.check("203.0.113.9", SECRET)
    assert verdict == Denied(403, "remote management disabled")


@pytest_twisted.ensureDeferred
async def test_management_password_from_the_environment_is_accepted(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, secret=""), environ={"MANAGEMENT_PASSWORD": "envpw"})
    status, _, _ = await s.call("GET", "/debug", key="envpw")
    assert status == 200
