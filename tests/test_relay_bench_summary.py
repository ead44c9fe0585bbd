"""bench/relay_bench.py's summary: medians and ranges over repeated runs, goals, the README table.

The benchmark itself needs the lab (root); these check its pure functions on hand-made runs.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from bench_support import load_bench

bench = load_bench("relay_bench")


def _run(
    rate: int | None,
    *,
    p50: float | None = None,
    p99: float | None = None,
    p99_at_max: float | None = None,
    sender: int | None = None,
    stopped_by: str = "all rates passed",
    cut_short: bool = False,
    load: float = 0.5,
) -> dict[str, Any]:
    """A run as step_up returns it (steps left out: the summary does not read them)."""
    return {
        "run": 1,
        "load_average_at_start": [load, load, load],
        "cut_short_by_budget": cut_short,
        "sender_rate_at_highest_step": sender,
        "max_zero_loss_rate": rate,
        "max_zero_loss_target": None,
        "p99_us_at_max": p99_at_max,
        "stopped_by": stopped_by,
        "latency_at_50k_us": None
        if p99 is None
        else {"p50_us": p50, "p99_us": p99, "max_us": p99, "lost": 0},
        "steps": [],
    }


def test_spread_is_median_and_range_of_what_was_measured() -> None:
    assert bench.spread([300, 100, 200]) == {"median": 200, "min": 100, "max": 300, "measured": 3}
    assert bench.spread([10.0, None, 40.0]) == {"median": 25.0, "min": 10.0, "max": 40.0, "measured": 2}
    assert bench.spread([None, None]) == {"median": None, "min": None, "max": None, "measured": 0}
    assert bench.spread([]) == {"median": None, "min": None, "max": None, "measured": 0}


def test_a_run_with_no_passing_step_counts_as_zero_for_the_rate_and_is_counted() -> None:
    runs = [
        _run(400_000, p50=90.0, p99=150.0, p99_at_max=7_000.0, sender=480_000),
        _run(
            100_000, p50=110.0, p99=200.0, p99_at_max=2_000.0, sender=150_000, stopped_by="at 150000/s: loss"
        ),
        _run(None, stopped_by="at 1000/s: loss", sender=1_000),
    ]
    summary = bench.summarise(runs)
    assert summary["runs"] == 3
    assert summary["runs_without_passing_step"] == 1
    assert summary["runs_cut_short_by_budget"] == 0
    assert summary["max_zero_loss_rate"] == {"median": 100_000, "min": 0, "max": 400_000, "measured": 3}
    # The run that never reached 50k msg/s has no latency there: the median is of the other two.
    assert summary["p50_us_at_50k"] == {"median": 100.0, "min": 90.0, "max": 110.0, "measured": 2}
    assert summary["p99_us_at_50k"] == {"median": 175.0, "min": 150.0, "max": 200.0, "measured": 2}
    assert summary["p99_us_at_max"] == {"median": 4_500.0, "min": 2_000.0, "max": 7_000.0, "measured": 2}
    assert summary["sender_rate_at_highest_step"]["median"] == 150_000
    assert summary["stopped_by"] == ["all rates passed", "at 150000/s: loss", "at 1000/s: loss"]


def test_every_run_without_a_passing_step_gives_a_zero_rate_and_no_latency() -> None:
    summary = bench.summarise([_run(None, stopped_by="at 1000/s: loss"), _run(None, cut_short=True)])
    assert summary["max_zero_loss_rate"] == {"median": 0, "min": 0, "max": 0, "measured": 2}
    assert summary["runs_without_passing_step"] == 2
    assert summary["runs_cut_short_by_budget"] == 1
    assert summary["p99_us_at_50k"]["median"] is None


def _summary(**cases: dict[str, Any]) -> dict[str, Any]:
    """``{"gro-split/relay/64B": summarise(...)}`` -> nested summary."""
    nested: dict[str, Any] = {}
    for key, case in cases.items():
        variant, path, size = key.split("/")
        nested.setdefault(variant, {}).setdefault(path, {})[size] = case
    return nested


def test_goals_are_judged_on_the_medians() -> None:
    summary = bench.summarise_results(
        {
            "gro-split": {
                "relay": {
                    # median 150,000: exactly the goal, met; median p99 240 µs <= 250
                    "64B": [_run(150_000, p99=240.0), _run(500_000, p99=100.0), _run(100_000, p99=900.0)],
                    # median 100,000 (one run had no passing step, counted as 0): not met
                    "64-512B": [_run(None), _run(100_000, p99=260.0), _run(200_000, p99=255.0)],
                },
                "direct": {"64-512B": [_run(140_000, sender=140_000), _run(140_000, sender=320_000)]},
            },
            "nogro-shared": {"relay": {"64B": [_run(160_000, p99=999.0)]}},
        }
    )
    judged = {(g["variant"], g["path"], g["size"], g["metric"]): g for g in bench.evaluate_goals(summary)}
    assert len(judged) == len(bench.GOALS) == 10

    def met(variant: str, path: str, size: str, metric: str) -> bool | None:
        result: bool | None = judged[(variant, path, size, metric)]["met"]
        return result

    assert met("gro-split", "relay", "64B", "max_zero_loss_rate") is True
    assert judged[("gro-split", "relay", "64B", "max_zero_loss_rate")]["median"] == 150_000
    assert met("gro-split", "relay", "64-512B", "max_zero_loss_rate") is False
    assert judged[("gro-split", "relay", "64-512B", "max_zero_loss_rate")]["median"] == 100_000
    assert met("gro-split", "relay", "64B", "p99_us_at_50k") is True  # median 240
    assert met("gro-split", "relay", "64-512B", "p99_us_at_50k") is False  # median 257.5 > 250
    assert judged[("gro-split", "relay", "64-512B", "p99_us_at_50k")]["median"] == 257.5
    # The same p99 that fails gro-split's 250 µs passes nogro-shared's 1,000 µs.
    assert met("nogro-shared", "relay", "64B", "p99_us_at_50k") is True
    assert met("nogro-shared", "relay", "64B", "max_zero_loss_rate") is True
    # The probe sender: median of 140,000 and 320,000 is 230,000 < 300,000.
    assert met("gro-split", "direct", "64-512B", "sender_rate_at_highest_step") is False
    assert judged[("gro-split", "direct", "64-512B", "sender_rate_at_highest_step")]["median"] == 230_000
    # Cases that were not run are not measured, neither met nor failed.
    assert met("nogro-shared", "relay", "64-512B", "max_zero_loss_rate") is None
    assert met("nogro-shared", "direct", "64-512B", "sender_rate_at_highest_step") is None


def test_a_p99_goal_with_no_latency_measured_is_not_judged() -> None:
    summary = _summary(**{"gro-split/relay/64B": bench.summarise([_run(None)])})
    goals = bench.evaluate_goals(summary)
    p99 = next(g for g in goals if g["size"] == "64B" and g["metric"] == "p99_us_at_50k")
    rate = next(g for g in goals if g["size"] == "64B" and g["metric"] == "max_zero_loss_rate")
    assert p99["variant"] == "gro-split" and p99["met"] is None and p99["median"] is None
    assert rate["variant"] == "gro-split" and rate["met"] is False and rate["median"] == 0


def test_variants_name_gro_and_cpus() -> None:
    assert (
        bench.stopped_by_text(
            [
                "sender reached only 140531/s of 150000/s",
                "sender reached only 139900/s of 150000/s",
                "time budget",
            ]
        )
        == "sender short of 150000/s (2 runs); time budget (1 run)"
    )
    assert bench.variant_settings("gro-split") == {"gro": True, "shared_cpus": False}
    assert bench.variant_settings("nogro-shared") == {"gro": False, "shared_cpus": True}
    assert bench.variant_list("gro-split, nogro-shared") == ["gro-split", "nogro-shared"]
    for bad in ("gro", "split-gro", "gro-split,gro-split", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.variant_list(bad)


def test_the_table_has_a_row_per_case_with_median_range_and_stopped_by() -> None:
    results = {
        "gro-split": {
            "relay": {
                "64B": [
                    _run(400_000, p50=90.0, p99=150.0, load=0.3),
                    _run(500_000, p50=95.0, p99=160.0, stopped_by="at 500000/s: loss", load=0.4),
                    _run(450_000, p50=92.0, p99=155.0, load=1.2),
                ]
            }
        },
        "nogro-shared": {"relay": {"64B": [_run(None, stopped_by="time budget", cut_short=True, load=0.5)]}},
    }
    summary = bench.summarise_results(results)
    output = {
        "command": "python bench/relay_bench.py --repeat 3",
        "machine": {"cpus": 2, "load_average_at_start": [0.25, 0.3, 0.4]},
        "variants": {
            "gro-split": {
                "gro": True,
                "cpus": {"datacenter": [0], "aws": [1]},
                "load_average_at_start": [0.3],
            },
            "nogro-shared": {"gro": False, "cpus": "shared", "load_average_at_start": [0.5]},
        },
        "results": results,
        "summary": summary,
        "goals": bench.evaluate_goals(summary),
    }
    lines = bench.markdown_table(output).splitlines()
    assert lines[0].startswith("| variant | path | payload | max zero-loss rate")
    assert (
        "| gro-split | relay | 64B | 450,000 (400,000-500,000) | 92 / 155 (150-160) "
        "| all rates passed (2 runs); at 500000/s: loss (1 run) |"
    ) in lines
    assert (
        "| nogro-shared | relay | 64B | 0 (0-0), none passed in 1 of 1 runs | - | time budget (1 run) |"
    ) in lines
    assert "- gro-split, relay 64B: relay zero loss at >= 150,000 msg/s: met (median 450,000)" in lines
    assert (
        "- nogro-shared, relay 64-512B: relay zero loss at >= 150,000 msg/s: not measured (median -)" in lines
    )
    assert "Labs: gro-split: GRO on, CPUs datacenter 0 / aws 1; nogro-shared: GRO off, CPUs shared." in lines
    assert (
        "Load average (1 min) at start: 0.25 on 2 CPUs; at each variant's start: gro-split 0.30, "
        "nogro-shared 0.50; at the runs' starts: 0.30-1.20."
    ) in lines
    assert lines[-1] == "Command: `python bench/relay_bench.py --repeat 3`."


def test_a_json_from_before_the_variants_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="before --repeat/--variants"):
        bench.markdown_table({"summary": {"relay": {}}})
