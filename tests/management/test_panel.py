"""`/management.html`: a panel file when present, else the built-in status page; and
`/v0/management/panel-status`, what the built-in page reads."""

from __future__ import annotations

import json

import pytest_twisted
import treq

from cliproxy.management.panel import panel_path
from tests.management.kit import config_file

RECORD = {"type": "claude", "access_token": "a", "refresh_token": "r", "email": "me@example.com"}


async def _page(s) -> tuple[int, bytes, object]:
    response = await treq.get(s.url + "/management.html")
    return response.code, await response.content(), response.headers


def test_the_panel_file_is_looked_for_where_cliproxyapi_keeps_it():
    assert panel_path("/etc/cliproxy/config.yaml", {}) == "/etc/cliproxy/static/management.html"
    env = {"MANAGEMENT_STATIC_PATH": "/srv/panel"}
    assert panel_path("/etc/c.yaml", env) == "/srv/panel/management.html"
    env = {"MANAGEMENT_STATIC_PATH": "/srv/panel/management.html"}
    assert panel_path("/etc/c.yaml", env) == "/srv/panel/management.html"


@pytest_twisted.ensureDeferred
async def test_builtin_page_without_a_file_has_no_external_assets(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    status, body, headers = await _page(s)
    assert status == 200 and b"cliproxy status" in body
    csp = headers.getRawHeaders("content-security-policy")[0]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    for external in (b"http://", b"https://", b"//cdn", b"<link", b"src="):
        assert external not in body, external


@pytest_twisted.ensureDeferred
async def test_a_panel_file_beside_the_config_is_served_and_the_switch_hides_it(
    tmp_path, served_factory
):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "management.html").write_text("<html>official panel</html>")
    s = served_factory(config_file(tmp_path))
    status, body, headers = await _page(s)
    assert (status, body) == (200, b"<html>official panel</html>")
    assert headers.getRawHeaders("content-security-policy") is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "management.html").write_text("from env")
    s2 = served_factory(config_file(tmp_path), {"MANAGEMENT_STATIC_PATH": str(other)})
    assert (await _page(s2))[1] == b"from env"
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    path = config_file(hidden, "")
    path.write_text(
        path.read_text().replace(
            "remote-management:\n", "remote-management:\n  disable-control-panel: true\n"
        )
    )
    s3 = served_factory(path)
    assert (await _page(s3))[0] == 404


@pytest_twisted.ensureDeferred
async def test_panel_status_lists_credentials_usage_amp_and_errors(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path, "claude-api-key:\n  - api-key: sk-ant-test-9999\n"))
    (tmp_path / "auth" / "me.json").write_text(json.dumps(RECORD))
    s.app.authdir.scan()
    s.app.usage.record(
        model="alias-x",
        provider="claude",
        credential_id="me.json",
        client_key=None,
        status=429,
        stream=False,
    )
    assert (await s.call("GET", "/panel-status", key=None))[0] == 401
    status, body, _ = await s.call("GET", "/panel-status")
    assert status == 200
    creds = {c["id"]: c for c in body["credentials"]}
    assert creds["me.json"]["state"] == "ready" and creds["me.json"]["file"] == "me.json"
    assert creds["me.json"]["failed"] == 1
    [key] = [c for c in creds.values() if c["file"] is None]
    assert key["label"] == "…9999" and key["state"] == "ready"
    assert "sk-ant-test-9999" not in json.dumps(body)
    assert body["usage_by_model"]["alias-x"]["failed"] == 1
    assert body["amp_routes"] == {}
    assert body["recent_errors"][0]["status"] == 429
