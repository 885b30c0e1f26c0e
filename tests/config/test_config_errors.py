"""ConfigError's attributes and its one-line message."""

from __future__ import annotations

import pickle

import pytest

from cliproxy.config import ConfigError


@pytest.mark.parametrize(
    "kwargs,text",
    [
        (
            {"path": "claude-api-key[1].base-url", "line": 42, "source": "config.yaml"},
            "config.yaml: claude-api-key[1].base-url: not a URL (line 42)",
        ),
        ({"path": "port", "source": "c.yaml"}, "c.yaml: port: not a URL"),
        ({"line": 3, "source": "c.yaml"}, "c.yaml: not a URL (line 3)"),
        ({"path": "port"}, "port: not a URL"),
        ({}, "not a URL"),
    ],
)
def test_message_leaves_out_unknown_parts(kwargs, text):
    err = ConfigError("not a URL", **kwargs)
    assert str(err) == text
    assert err.message == "not a URL"
    assert err.path == kwargs.get("path", "")
    assert err.line == kwargs.get("line")
    assert err.source == kwargs.get("source", "")


def test_survives_pickling():
    err = pickle.loads(pickle.dumps(ConfigError("bad", "a.b", 7, "x.yaml")))
    assert (err.path, err.line, err.source, str(err)) == (
        "a.b",
        7,
        "x.yaml",
        "x.yaml: a.b: bad (line 7)",
    )
