"""Golden upstream requests: every executor x client format x stream against its fixture.

Regenerate after a deliberate change with `CLIPROXY_REGEN_GOLDEN=1 .venv/bin/python -m pytest
-q -p no:cacheprovider tests/golden`, then read the diff and check each change against
core.md §2 and CLIProxyAPI's executors (docs/provider-fidelity.md lists the differences).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.golden.golden import REGEN_ENV, build_fixture, combinations, fixture_path


@pytest.mark.parametrize(
    ("executor", "client", "stream"),
    combinations(),
    ids=[f"{e}-{c}-{'stream' if s else 'nonstream'}" for e, c, s in combinations()],
)
def test_golden_upstream_request(executor, client, stream):
    got = build_fixture(executor, client, stream)
    path = fixture_path(executor, client, stream)
    if os.environ.get(REGEN_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"no fixture {path}; run with {REGEN_ENV}=1 to write it"
    assert got == json.loads(path.read_text())


def test_fixtures_hold_no_secret():
    from tests.golden.golden import ACCESS, API_KEY

    for e, c, s in combinations():
        path = fixture_path(e, c, s)
        if path.exists():
            text = path.read_text()
            assert API_KEY not in text and ACCESS not in text, path
