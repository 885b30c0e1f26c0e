"""auth-files: list with state, download, upload (multipart and raw), delete, status."""

from __future__ import annotations

import json

import pytest_twisted
import treq

from tests.management.kit import SECRET, config_file

RECORD = {"type": "claude", "access_token": "a", "refresh_token": "r", "email": "me@example.com"}


def _auth(tmp_path):
    return tmp_path / "auth"


@pytest_twisted.ensureDeferred
async def test_raw_upload_lists_downloads_disables_and_deletes(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    raw = json.dumps(RECORD).encode()
    status, body, _ = await s.call("POST", "/auth-files?name=me.json", raw=raw)
    assert (status, body) == (200, {"status": "ok"})
    assert (_auth(tmp_path) / "me.json").exists()
    status, body, _ = await s.call("GET", "/auth-files")
    [entry] = body["files"]
    assert entry["name"] == "me.json" and entry["provider"] == "claude"
    assert entry["status"] == "active" and entry["email"] == "me@example.com"
    assert "access_token" not in json.dumps(body)
    status, data, headers = await s.call("GET", "/auth-files/download?name=me.json")
    assert status == 200 and data["refresh_token"] == "r"
    assert b"attachment" in headers.getRawHeaders("content-disposition")[0].encode()
    status, body, _ = await s.call(
        "PATCH", "/auth-files/status", {"name": "me.json", "disabled": True}
    )
    assert (status, body) == (200, {"status": "ok", "disabled": True})
    assert (await s.call("GET", "/auth-files"))[1]["files"][0]["status"] == "disabled"
    assert (await s.call("PATCH", "/auth-files/fields", {"name": "me.json", "note": "hi"}))[
        0
    ] == 200
    assert json.loads((_auth(tmp_path) / "me.json").read_text())["note"] == "hi"
    assert (await s.call("DELETE", "/auth-files?name=me.json"))[0] == 200
    assert not (_auth(tmp_path) / "me.json").exists()
    assert (await s.call("GET", "/auth-files"))[1] == {"files": []}


@pytest_twisted.ensureDeferred
async def test_bad_uploads_are_refused_and_nothing_is_written(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    raw = json.dumps(RECORD).encode()
    for name in ("../evil.json", "..%2Fevil.json", "sub/x.json", "x.txt", ".hidden.json"):
        status, body, _ = await s.call("POST", f"/auth-files?name={name}", raw=raw)
        assert status == 400, (name, body)
    status, body, _ = await s.call("POST", "/auth-files?name=x.json", raw=b"not json")
    assert (status, body) == (400, {"error": "invalid json"})
    status, _, _ = await s.call("DELETE", "/auth-files?name=../config.yaml")
    assert status == 400
    big = b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, _, _ = await s.call("POST", "/auth-files?name=big.json", raw=big)
    assert status == 413
    assert list(_auth(tmp_path).iterdir()) == []
    assert not (tmp_path / "evil.json").exists()
    assert (tmp_path / "config.yaml").exists()


@pytest_twisted.ensureDeferred
async def test_multipart_upload_reduces_the_name_to_its_base(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="../../outside.json"\r\n'
        b"Content-Type: application/json\r\n\r\n" + json.dumps(RECORD).encode() + b"\r\n--XyZ--\r\n"
    )
    response = await treq.post(
        s.url + "/v0/management/auth-files",
        data=body,
        headers={
            "Authorization": f"Bearer {SECRET}",
            "Content-Type": "multipart/form-data; boundary=XyZ",
        },
    )
    assert response.code == 200, await response.text()
    assert (_auth(tmp_path) / "outside.json").exists()
    assert not (tmp_path.parent / "outside.json").exists()


@pytest_twisted.ensureDeferred
async def test_models_of_an_auth_file_come_from_the_live_registry(tmp_path, served_factory):
    key = "sk-client-key-models-01"
    path = config_file(
        tmp_path, f"api-keys: [{key}]\noauth-excluded-models:\n  claude: ['*haiku*']\n"
    )
    (_auth(tmp_path) / "me.json").write_text(json.dumps(RECORD))
    s = served_factory(path)
    status, body, _ = await s.call("GET", "/auth-files/models?name=me.json")
    assert status == 200
    ids = [m["id"] for m in body["models"]]
    assert ids and all(m["type"] == "claude" for m in body["models"])
    assert not any("haiku" in i for i in ids)
    response = await treq.get(s.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
    listed = {m["id"] for m in (await response.json())["data"]}
    assert set(ids) <= listed
    assert (await s.call("GET", "/auth-files/models?name=other.json"))[1] == {"models": []}
    assert (await s.call("GET", "/auth-files/models"))[:2] == (400, {"error": "name is required"})
