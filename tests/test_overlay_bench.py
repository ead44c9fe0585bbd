"""bench/overlay_bench.py's summary and table: six paths side by side, ratios, goals.

The benchmark itself needs namespaces (root); these check its pure functions on hand-made runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pytest
from bench_support import load_bench

# overlay_bench imports relay_bench as a sibling script: give it the one loaded from bench/.
sys.modules.setdefault("relay_bench", load_bench("relay_bench"))
bench = load_bench("overlay_bench")


def _run(path: str, size: str, rate: int, *, p99: float | None, stopped_by: str) -> dict[str, Any]:
    """A run as step_up returns it (steps left out: the summary does not read them)."""
    return {
        "repeat": 0,
        "path": path,
        "size": size,
        "max_zero_loss_rate": rate,
        "stopped_by": stopped_by,
        "latency_at_10k_us": None if p99 is None else {"p50_us": p99 / 2, "p99_us": p99, "lost": 0},
        "steps": [],
    }


#: Per size, each path's max zero-loss rate in two runs (udptunnel: no step passed).
RATES = {
    "64": {"direct": (400_000, 400_000), "relay": (300_000, 400_000), "udptunnel": (0, 0),
           "overlay": (400_000, 400_000), "overlay-wg": (50_000, 50_000), "n2n": (25_000, 25_000)},
    "64-512": {"direct": (200_000, 210_000), "relay": (100_000, 100_000), "udptunnel": (0, 0),
               "overlay": (170_000, 172_000), "overlay-wg": (40_000, 60_000), "n2n": (25_000, 25_000)},
}  # fmt: skip


def _stopped_by(path: str, size: str, rate: int) -> str:
    if rate == 0:
        return "at 1000/s: loss"
    if (path, size) == ("overlay", "64-512"):  # no loss: the sender reached no higher
        return f"sender reached only {rate}/s of 200000/s"
    return "all rates passed"


def _runs(rates: dict[str, dict[str, tuple[int, ...]]] = RATES) -> list[dict[str, Any]]:
    """Every (size, path, run) of ``rates``; latency p99 50 µs in the first run, 51 in the second."""
    return [
        _run(
            path,
            size,
            rate,
            p99=None if rate == 0 else 50.0 + index,
            stopped_by=_stopped_by(path, size, rate),
        )
        for size, paths in rates.items()
        for path, values in paths.items()
        for index, rate in enumerate(values)
    ]


def test_each_row_has_every_path_with_its_median_and_range() -> None:
    table = bench.summarise(_runs())["table"]
    assert list(table) == ["64", "64-512"]
    row = table["64-512"]
    assert row["direct"]["max_zero_loss_rate"] == {
        "median": 205_000,
        "min": 200_000,
        "max": 210_000,
        "measured": 2,
    }
    assert row["relay"]["runs"] == 2
    assert row["udptunnel"]["max_zero_loss_rate"]["median"] == 0
    # A run that never reached 10k msg/s has no latency there.
    assert row["udptunnel"]["p99_us_at_10k"]["median"] is None
    assert row["overlay"]["p99_us_at_10k"] == {"median": 50.5, "min": 50.0, "max": 51.0, "measured": 2}
    assert row["overlay"]["p50_us_at_10k"]["median"] == 25.25


def test_ratios_are_the_overlays_to_direct_and_to_n2n() -> None:
    ratios = bench.summarise(_runs())["table"]["64-512"]["ratios"]
    assert ratios == {
        "overlay/direct": 0.83,  # 171,000 / 205,000
        "overlay/n2n": 6.84,
        "overlay-wg/n2n": 2.0,  # both encrypted
        "relay/direct": 0.49,
    }


def test_goals_are_judged_on_every_row() -> None:
    goals = bench.summarise(_runs())["goals"]
    assert goals == {
        "overlay >= 90% of direct on every row": False,
        "overlay ahead of n2n on every row": True,
    }
    closer = {size: {**paths, "overlay": (190_000, 190_000)} for size, paths in RATES.items()}
    closer["64"] = RATES["64"]
    assert bench.summarise(_runs(closer))["goals"]["overlay >= 90% of direct on every row"] is True


def test_a_path_not_measured_has_no_ratio_and_leaves_its_goal_unjudged() -> None:
    runs = [run for run in _runs() if run["path"] != "n2n"]
    summary = bench.summarise(runs)
    row = summary["table"]["64"]
    assert row["n2n"]["runs"] == 0
    assert row["n2n"]["max_zero_loss_rate"]["median"] is None
    assert row["ratios"]["overlay/n2n"] is None
    assert row["ratios"]["overlay-wg/n2n"] is None
    assert summary["goals"]["overlay ahead of n2n on every row"] is None
    assert summary["goals"]["overlay >= 90% of direct on every row"] is False


def test_the_table_is_one_markdown_table_of_all_six_paths() -> None:
    results = {
        "runs": [run for run in _runs() if run["path"] != "relay"],
        "load_average": [0.5, 0.4, 0.3],
        "repeat": 2,
        "controls": {"underlay": 0, "relay": 0, "udptunnel": 0},
        "placement": {"a": [0], "b": [1], "ut": [1]},
    }
    lines = bench.render(results).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "size", "max zero-loss msg/s: direct", "relay", "udptunnel", "overlay", "overlay-wg", "n2n",
        "overlay/direct", "overlay/n2n", "overlay-wg/n2n", "relay/direct",
        "p50/p99 µs at 10k: direct", "relay", "udptunnel", "overlay", "overlay-wg", "n2n",
    ]  # fmt: skip
    assert lines[1] == "| --- |" + " ---: |" * 16
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")[1:]]
        for line in lines[2:4]
    }
    # Not measured: "-"; a sender that fell short (no loss): "*".
    assert rows["64-512 B"][:6] == ["205,000", "-", "0", "171,000*", "50,000", "25,000"]
    assert rows["64-512 B"][6:10] == ["0.83", "6.84", "2.00", "-"]
    assert rows["64-512 B"][10:] == ["25/50", "-", "-", "25/50", "25/50", "25/50"]
    assert rows["64 B"][:6] == ["400,000", "-", "0", "400,000", "50,000", "25,000"]
    assert lines[4] == ""
    assert lines[5].startswith("\\* no loss at that rate")
    assert '"underlay": 0, "relay": 0, "udptunnel": 0' in lines[6]
    assert "repeats 2" in lines[6]


def test_an_older_json_without_controls_or_placement_still_renders() -> None:
    runs = [run for run in _runs() if run["path"] in ("direct", "overlay", "n2n")]
    text = bench.render({"runs": runs, "load_average": [0.9], "repeat": 2, "underlay_carries": 0})
    assert "| 64-512 B | 205,000 | - | - | 171,000* | - | 25,000 | 0.83 | 6.84 | - | - |" in text
    assert 'controls (datagrams heard, must be 0): {"underlay": 0}' in text
    assert text.endswith('CPUs "any"')


def test_paths_and_sizes_options() -> None:
    parse = bench._names(bench.PATHS)
    assert parse("n2n, overlay,direct") == ["direct", "overlay", "n2n"]  # in the table's order
    with pytest.raises(argparse.ArgumentTypeError):
        parse("direct,vxlan")
    assert [str(size) for size in bench._sizes("64-512,1024")] == ["64-512", "1024"]
