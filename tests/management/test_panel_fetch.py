"""The official panel fetched on demand from a (loopback) release server, as CLIProxyAPI does."""

from __future__ import annotations

import hashlib

import pytest_twisted
import treq

from cliproxy.management.panel_fetch import DEFAULT_RELEASE_URL, release_url, static_dir
from tests.fakes import FakeUpstream, Reply
from tests.management.kit import config_file

RELEASE = "/repos/router-for-me/Cli-Proxy-API-Management-Center/releases/latest"
ASSET_PATH = "/download/v9.9.9/management.html"
PANEL = b"<!doctype html><title>Management Center</title><p>official panel v9.9.9</p>"


def test_release_addresses_and_the_static_directory_follow_cliproxyapi():
    repo = "https://github.com/router-for-me/Cli-Proxy-API-Management-Center"
    assert release_url(repo) == DEFAULT_RELEASE_URL
    assert release_url(repo + ".git/") == DEFAULT_RELEASE_URL
    assert release_url("https://github.com/me/panel") == (
        "https://api.github.com/repos/me/panel/releases/latest"
    )
    assert release_url("https://api.github.com/repos/me/panel") == (
        "https://api.github.com/repos/me/panel/releases/latest"
    )
    assert release_url("") == DEFAULT_RELEASE_URL
    assert release_url("not a url") == DEFAULT_RELEASE_URL
    assert release_url("http://127.0.0.1:9/rel.json") == "http://127.0.0.1:9/rel.json"
    assert static_dir("/etc/cliproxy/config.yaml", {}) == "/etc/cliproxy/static"
    assert static_dir("/etc/c.yaml", {"WRITABLE_PATH": "/var/lib/x"}) == "/var/lib/x/static"
    env = {"MANAGEMENT_STATIC_PATH": "/srv/p/management.html", "WRITABLE_PATH": "/var/lib/x"}
    assert static_dir("/etc/c.yaml", env) == "/srv/p"


def _release_server(start_fake, body: bytes = PANEL, digest: str | None = None) -> FakeUpstream:
    fake = start_fake(FakeUpstream)
    digest = digest if digest is not None else "sha256:" + hashlib.sha256(body).hexdigest()

    def release(rec):
        if rec.header("accept") != "application/vnd.github+json":
            return Reply(status=415, json={"message": "Unsupported 'Accept' header"})
        asset = {
            "name": "management.html",
            "browser_download_url": fake.url + ASSET_PATH,
            "digest": digest,
        }
        other = {"name": "notes.txt", "browser_download_url": fake.url + "/x", "digest": None}
        return Reply(json={"tag_name": "v9.9.9", "assets": [other, asset]})

    fake.default("GET", RELEASE, release)
    fake.default("GET", ASSET_PATH, Reply(body=body, content_type="text/html"))
    return fake


async def _page(s) -> tuple[int, bytes]:
    response = await treq.get(s.url + "/management.html")
    return response.code, await response.content()


@pytest_twisted.ensureDeferred
async def test_missing_panel_is_downloaded_verified_and_kept_beside_the_config(
    tmp_path, served_factory, start_fake
):
    fake = _release_server(start_fake)
    s = served_factory(config_file(tmp_path, panel_release=fake.url + RELEASE))
    assert await _page(s) == (200, PANEL)
    kept = tmp_path / "static" / "management.html"
    assert kept.read_bytes() == PANEL
    assert [r.path for r in fake.requests] == [RELEASE, ASSET_PATH]
    assert fake.requests[0].header("user-agent") == "CLIProxyAPI-management-updater"
    # served from disk now; no new call until the release is due for a check again
    assert await _page(s) == (200, PANEL)
    assert len(fake.requests) == 2
    s.clock.advance(3 * 3600)
    assert await _page(s) == (200, PANEL)
    assert [r.path for r in fake.requests][2:] == [RELEASE]  # same digest: not downloaded


@pytest_twisted.ensureDeferred
async def test_a_newer_release_replaces_the_file_and_writable_path_is_used(
    tmp_path, served_factory, start_fake
):
    newer = PANEL.replace(b"v9.9.9", b"v10.0.0")
    fake = _release_server(start_fake, body=newer)
    writable = tmp_path / "writable"
    (writable / "static").mkdir(parents=True)
    (writable / "static" / "management.html").write_bytes(PANEL)
    path = config_file(tmp_path, panel_release=fake.url + RELEASE)
    s = served_factory(path, {"WRITABLE_PATH": str(writable)})
    assert await _page(s) == (200, newer)
    assert (writable / "static" / "management.html").read_bytes() == newer
    assert not (tmp_path / "static").exists()


@pytest_twisted.ensureDeferred
async def test_a_digest_mismatch_writes_nothing_and_the_builtin_page_answers(
    tmp_path, served_factory, start_fake
):
    fake = _release_server(start_fake, digest="sha256:" + "0" * 64)
    s = served_factory(config_file(tmp_path, panel_release=fake.url + RELEASE))
    status, body = await _page(s)
    assert status == 200 and b"cliproxy status" in body
    assert not (tmp_path / "static" / "management.html").exists()
    assert [r.path for r in fake.requests] == [RELEASE, ASSET_PATH]
    # the next page view within the minimum interval does not call again
    assert b"cliproxy status" in (await _page(s))[1]
    assert len(fake.requests) == 2


@pytest_twisted.ensureDeferred
async def test_disable_auto_update_panel_makes_no_network_call(
    tmp_path, served_factory, start_fake
):
    fake = _release_server(start_fake)
    path = config_file(tmp_path, panel_release=fake.url + RELEASE)
    path.write_text(
        path.read_text().replace(
            "remote-management:\n", "remote-management:\n  disable-auto-update-panel: true\n"
        )
    )
    s = served_factory(path)
    status, body = await _page(s)
    assert status == 200 and b"cliproxy status" in body
    s.clock.advance(4 * 3600)
    await _page(s)
    assert fake.requests == []
    assert not (tmp_path / "static").exists()


@pytest_twisted.ensureDeferred
async def test_an_unreachable_or_broken_release_server_leaves_the_builtin_page(
    tmp_path, served_factory, start_fake
):
    fake = start_fake(FakeUpstream)
    fake.default("GET", RELEASE, Reply(json={"assets": []}))
    s = served_factory(config_file(tmp_path, panel_release=fake.url + RELEASE))
    status, body = await _page(s)
    assert status == 200 and b"cliproxy status" in body
    assert [r.path for r in fake.requests] == [RELEASE]
    assert not (tmp_path / "static" / "management.html").exists()
