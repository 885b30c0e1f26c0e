"""`cliproxy login vertex --import FILE` and CLIProxyAPI's `--vertex-import FILE`."""

from __future__ import annotations

import json
import os
import stat

import pytest

from cliproxy.cli import main, parse_args
from tests.fakes.vertex import service_account_json


@pytest.fixture(scope="module")
def sa():
    return service_account_json(project="my-proj")[0]


def _config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"auth-dir: {tmp_path / 'auth'}\n")
    return str(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["login", "vertex", "--import", "{key}", "--config", "{config}"],
        ["--vertex-import", "{key}", "--config", "{config}"],
        ["-vertex-import", "{key}", "-config", "{config}"],
    ],
)
def test_import_writes_a_private_vertex_file_cliproxyapi_reads(tmp_path, sa, argv, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(sa))
    config = _config(tmp_path)
    assert main([a.format(key=key, config=config) for a in argv]) == 0
    path = tmp_path / "auth" / "vertex-my-proj.json"
    assert f"Vertex credentials imported: {path}" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert record["type"] == "vertex" and record["project_id"] == "my-proj"
    assert record["service_account"] == sa and record["location"] == "us-central1"
    assert record["email"] == sa["client_email"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_prefix_names_the_file(tmp_path, sa):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(sa))
    argv = ["login", "vertex", "--import", str(key), "--prefix", "team", "-c", _config(tmp_path)]
    assert main(argv) == 0
    assert (
        json.loads((tmp_path / "auth" / "vertex-team-my-proj.json").read_text())["prefix"] == "team"
    )


def test_a_broken_key_is_refused_and_nothing_is_written(tmp_path, sa, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(dict(sa, private_key="not a key")))
    assert main(["--vertex-import", str(key), "--config", _config(tmp_path)]) == 1
    assert "service_account.private_key is not a PEM key" in capsys.readouterr().err
    assert not (tmp_path / "auth").exists()


def test_login_vertex_without_import_is_a_usage_error(tmp_path, capsys):
    assert main(["login", "vertex", "--config", _config(tmp_path)]) == 2
    assert "--import FILE" in capsys.readouterr().err


def test_other_legacy_logins_still_parse():
    args = parse_args(["--claude-login", "--no-browser"])
    assert (args.command, args.provider, args.import_file) == ("login", "claude", "")
