"""bench/compare.py and bench/flame.py: the report logic, on made-up figures.

No figure is measured here: these check that ratios are taken within a repetition, that
the targets block reads the medians, and that py-spy stacks are attributed as documented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if not (BENCH / "compare.py").is_file():  # the Debian package build tests a copy without bench/
    pytest.skip("bench/ is not beside tests/ in this tree", allow_module_level=True)


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def leg(rps: float, cpu: float, **more: Any) -> dict[str, Any]:
    return {"rps": rps, "cpu_us_per": cpu, "other_pct": 10.0, "cpu_pct": 50.0, **more}


def results(reps: int = 3) -> dict[str, Any]:
    """Floor CPU 1000 µs; cliproxy openai 1100 in two repetitions, 1500 in one."""
    openai = [1100.0, 1500.0, 1100.0][:reps]
    legs: dict[str, Any] = {}
    for name in ("nonstream-c1", "nonstream-c64"):
        legs[name] = {
            "direct openai": [leg(9000, 0) for _ in range(reps)],
            "direct claude": [leg(9000, 0) for _ in range(reps)],
            "floor openai": [leg(500, 1000) for _ in range(reps)],
            "floor claude": [leg(500, 1000) for _ in range(reps)],
            "cliproxy openai": [leg(400, c) for c in openai],
            "cliproxy claude": [leg(400, 1300) for _ in range(reps)],
            "cliproxy chat->claude": [leg(400, 1400) for _ in range(reps)],
        }
    return {
        "reps": reps,
        "legs": legs,
        "columns": [
            ["cliproxy openai", "floor openai"],
            ["cliproxy claude", "floor claude"],
            ["cliproxy chat->claude", "floor claude"],
        ],
    }


def test_ratio_is_taken_within_each_repetition_then_the_median() -> None:
    import compare

    rs = compare.ratios(results(), "nonstream-c1", "cliproxy openai", 1)
    assert rs == [1.1, 1.5, 1.1]
    assert compare.median(rs) == 1.1


def test_targets_block_marks_met_from_the_median_and_never_raises() -> None:
    import compare

    text = compare.report(results())
    rows = [r for r in text.splitlines() if r.startswith("| CPU per")]
    same = [r for r in rows if "same-format" in r and "| openai |" in r]
    assert same and all(r.endswith("| met |") for r in same)  # 1.1x <= 1.2x
    claude = [r for r in rows if "same-format" in r and "| claude |" in r]
    assert claude and all(r.endswith("**not met** |") for r in claude)  # 1.3x
    translated = [r for r in rows if "translated" in r]
    assert translated and all(r.endswith("| met |") for r in translated)  # 1.4x <= 1.5x


def test_cpu_reading_falls_back_to_stat_when_a_thread_went_away() -> None:
    import compare

    before = {1: (10.0, 10.0, frozenset({"1", "2"}))}
    kept = {1: (10.5, 10.49, frozenset({"1", "2", "3"}))}
    lost = {1: (9.0, 10.49, frozenset({"1"}))}  # thread 2 exited with its schedstat
    assert compare.cpu_between(before, kept) == pytest.approx(0.5)
    assert compare.cpu_between(before, lost) == pytest.approx(0.49)


def test_flame_samples_go_to_the_innermost_library_frame(tmp_path: Path) -> None:
    import flame

    reactor = "run (twisted/internet/base.py:1);doRead (twisted/internet/tcp.py:2)"
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "\n".join(
            [
                # json under cliproxy's parser: cliproxy's
                f"{reactor};handle (cliproxy/routing/router.py:3);loads (json/__init__.py:4) 30",
                # a socket send under Twisted, called from cliproxy: Twisted's
                f"{reactor};relay (cliproxy/upstream/stream.py:5);write (twisted/web/http.py:6) 50",
                f"{reactor};doPoll (x);EPollReactor.doPoll (twisted/internet/epollreactor.py:7) 99",
                f"{reactor} 20",
            ]
        )
        + "\n"
    )
    s = flame.summarize(raw)
    assert s["samples"] == 100 and s["idle_samples"] == 99
    assert s["owners"]["cliproxy"] == 30.0
    assert s["owners"]["twisted.web (HTTP server, client, proxy)"] == 50.0
    assert s["owners"]["twisted.internet (reactor, TCP, Deferred)"] == 20.0
    assert s["under_cliproxy_pct"] == 80.0
    text = flame.render(
        {
            name: {"leg": "nonstream-c64", "target": name, "cpu_us_per": 1000.0, "svg": "x.svg"}
            | {"summary": s}
            for name in ("floor", "cliproxy openai")
        }
    )
    assert "| cliproxy | 300 | 300 | +0 |" in text
