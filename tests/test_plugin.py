"""The twistd plugin: discoverable from the checkout, and from a normal pip install."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from cliproxy.tap import Options


def test_plugin_is_discoverable():
    makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
    assert "cliproxy" in makers
    assert makers["cliproxy"].options is Options


def test_no_init_py_under_twisted_plugins():
    root = Path(__file__).resolve().parent.parent
    assert not (root / "twisted" / "__init__.py").exists()
    assert not (root / "twisted" / "plugins" / "__init__.py").exists()


def test_options_take_config_and_listen():
    opts = Options()
    opts.parseOptions(["--config", "x.yaml", "--listen", "tcp:9999:interface=127.0.0.1"])
    assert opts["config"] == "x.yaml"
    assert opts["listen"] == "tcp:9999:interface=127.0.0.1"


def _installed_normally() -> bool:
    """cliproxy's plugin file sits in this interpreter's site-packages (a pip install that
    is not editable), and the environment has its own twistd script."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    plugin = purelib / "twisted" / "plugins" / "cliproxy_plugin.py"
    return plugin.exists() and (Path(sys.executable).parent / "twistd").exists()


@pytest.mark.skipif(not _installed_normally(), reason="cliproxy is not pip-installed here")
def test_pip_installed_twistd_finds_the_plugin_outside_the_checkout(tmp_path):
    twistd = Path(sys.executable).parent / "twistd"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(twistd), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "cliproxy" in out.stdout
