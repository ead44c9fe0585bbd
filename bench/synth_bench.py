#!/usr/bin/env python3
"""How long a synth takes: the example config, and generated configs of 1/3 regions x 10/100/300 customers.

Each measurement runs ``python app.py`` in a fresh process, the way ``cdk synth`` does
(the cdk.json feature flags and ``config`` passed as CDK_CONTEXT_JSON), so process start,
jsii start-up and writing the assembly are included. With ``--cli`` the example is also
timed through the pinned CDK CLI (``cdk synth --quiet``).

Prints one JSON document on stdout. Not a test: nothing is asserted.

    python bench/synth_bench.py [--repeat N] [--cli]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example.yaml"
#: Members per group are capped at 100, so customers are spread over this many domains.
DOMAINS_PER_REGION = 4
#: Regions of the generated configs, each with its own /16 and one zone per domain (the
#: Transit Gateway attachment takes one multicast subnet per zone).
REGIONS = [("us-east-1", "abcd"), ("us-west-2", "abcd"), ("ap-northeast-2", "abcd")]


def generated_config(regions: int, customers: int) -> dict[str, Any]:
    """A valid config: ``regions`` regions, 4 domains each, customers spread round-robin."""
    data: dict[str, Any] = {
        "project": "bench",
        "provider_account": "111111111111",
        "regions": {},
        "customers": [],
    }
    for r, (name, zones) in enumerate(REGIONS[:regions]):
        azs = [f"{name}{z}" for z in zones[:DOMAINS_PER_REGION]]
        domains, subnets = [], []
        for d in range(DOMAINS_PER_REGION):
            domains.append(
                {
                    "name": f"feed-{d}",
                    "source_cidrs": [f"10.{100 + r}.{d}.0/24"],  # the domain's own subnet
                    "groups": [
                        {"name": f"g{g}", "address": f"239.{r}.{d}.{g + 1}", "port": 30000 + d * 10 + g}
                        for g in range(3)
                    ],
                }
            )
            cidr = f"10.{100 + r}.{d}.0/24"
            subnets.append({"cidr": cidr, "availability_zone": azs[d], "domain": f"feed-{d}"})
        data["regions"][name] = {
            "availability_zones": azs,
            "vpc_cidr": f"10.{100 + r}.0.0/16",
            "subnets": subnets,
            "domains": domains,
        }
    for c in range(customers):
        data["customers"].append(
            {
                "name": f"customer-{c}",
                "principal": f"{200000000000 + c}",
                "entitlements": [
                    {"region": name, "domains": [f"feed-{c % DOMAINS_PER_REGION}"]}
                    for name in data["regions"]
                ],
            }
        )
    return data


def _context(config: Path) -> str:
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return json.dumps({**context, "config": str(config)})


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_app(config: Path, workdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds for one ``python app.py`` synth of ``config``, process start included.

    CPU time (the app and its jsii node process) is less sensitive to a busy machine.
    """
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    env = {**os.environ, "CDK_CONTEXT_JSON": _context(config), "CDK_OUTDIR": str(outdir)}
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    shutil.rmtree(outdir, ignore_errors=True)
    return elapsed, cpu


def time_cli(config: Path, workdir: Path) -> float | None:
    """Seconds for ``cdk synth --quiet`` through the pinned CLI, or None without node_modules."""
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        return None
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(cdk.parent), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        ),
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }
    command = [str(cdk), "synth", "--quiet", "-o", str(outdir), "-c", f"config={config}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(outdir, ignore_errors=True)
    return elapsed


def table(results: dict[str, Any]) -> str:
    """The README's Markdown table of a result document."""
    rows = ["| case | wall s | CPU s |", "| --- | --- | --- |"]
    for case, wall in results["seconds"].items():
        cpu = results["cpu_seconds"].get(case)
        rows.append(f"| {case} | {wall} | {'-' if cpu is None else cpu} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the minimum is reported")
    parser.add_argument("--cli", action="store_true", help="also time the example through `cdk synth`")
    parser.add_argument("--table", metavar="JSON", help="print a result file as a Markdown table and exit")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text(encoding="utf-8"))))
        return 0

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "method": "python app.py in a fresh process, cdk.json context via CDK_CONTEXT_JSON; min of --repeat",
        "repeat": args.repeat,
        "seconds": {},
        "cpu_seconds": {},
    }
    with tempfile.TemporaryDirectory(prefix="mcastkit-bench-") as tmp:
        workdir = Path(tmp)
        cases: list[tuple[str, Path]] = [("example", EXAMPLE)]
        for regions in (1, 3):
            for customers in (10, 100, 300):
                path = workdir / f"r{regions}-c{customers}.yaml"
                path.write_text(yaml.safe_dump(generated_config(regions, customers)), encoding="utf-8")
                cases.append((f"regions={regions},customers={customers}", path))
        for name, path in cases:
            runs = [time_app(path, workdir) for _ in range(args.repeat)]
            results["seconds"][name] = round(min(wall for wall, _ in runs), 2)
            results["cpu_seconds"][name] = round(min(cpu for _, cpu in runs), 2)
        if args.cli:
            cli = time_cli(EXAMPLE, workdir)
            results["seconds"]["example via cdk synth"] = None if cli is None else round(cli, 2)
    for key in ("seconds", "cpu_seconds"):
        measured = results[key]
        results[f"customers_10_to_300_delta_{key}"] = {
            f"regions={r}": round(
                measured[f"regions={r},customers=300"] - measured[f"regions={r},customers=10"], 2
            )
            for r in (1, 3)
        }
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
