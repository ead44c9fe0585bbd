"""``mcastkit onboard``: hand a customer its kit, let it join, accept it, and watch the result.

* ``kit`` (no AWS access): the customer's template, parameters and README;
* ``join`` (customer account): accept the RAM invitation and wait for the shared TGW;
* ``accept`` (provider account): accept entitled attachments/associations, reject others;
* ``status`` (provider account): per-customer table, intruders, group quotas.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from mcastkit.config import Capacity, Config, ConfigError, load_config
from mcastkit.config.checks import capacity_problems
from mcastkit.config.loader import validation_problems
from mcastkit.console import Console
from mcastkit.errors import BadInput, EnvironmentFailure, McastkitError
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws, AwsFailure, region_of_arn

SHARE_ARN_HINT = "arn:aws:ram:<region>:<provider-account>:resource-share/<id>"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("onboard", help="onboard customer accounts (kit, join, accept, status)")
    commands = parser.add_subparsers(
        dest="onboard_command", metavar="{kit,join,accept,status}", required=True
    )

    kit = commands.add_parser("kit", help="write a customer's template, parameters and README")
    _config_region(kit)
    kit.add_argument("--customer", required=True, help="customer name from the config")
    kit.add_argument("--out", required=True, type=Path, help="directory to write the kit into")
    kit.add_argument(
        "--subnets-per-domain",
        type=int,
        default=None,
        help="receiver subnets per domain (default 1; each needs its own AZ); keep it the same for every "
        "kit of this customer: a different count moves subnets between associations, which replaces them",
    )
    kit.add_argument(
        "--cluster", action="store_true", help="add an IGMPv2 ECS cluster (EC2) in the receiver subnets"
    )
    kit.add_argument(
        "--instance-type", default="c6in.large", help="cluster instance type, Nitro (c6in.large)"
    )
    kit.add_argument("--min-capacity", type=int, default=1, help="cluster hosts, at least (default 1)")
    kit.add_argument("--max-capacity", type=int, default=2, help="cluster hosts, at most (default 2)")
    kit.set_defaults(handler=run_kit)

    join = commands.add_parser(
        "join", help="(customer account) accept the provider's RAM share and wait for it"
    )
    join.add_argument("--share-arn", required=True, help=f"the share's ARN ({SHARE_ARN_HINT})")
    join.add_argument("--region", help="default: the share ARN's region")
    join.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the TGW (default 300)"
    )
    join.add_argument("--interval", type=float, default=5.0, help="seconds between checks (default 5)")
    join.add_argument("--profile", help="AWS profile (default: the environment's credentials)")
    join.add_argument("--json", action="store_true", help="print the result as JSON")
    join.set_defaults(handler=run_join)

    accept = commands.add_parser("accept", help="(provider account) accept entitled customers, reject others")
    _config_region(accept)
    accept.add_argument("--dry-run", action="store_true", help="report the decisions, change nothing")
    accept.add_argument(
        "--watch",
        action="store_true",
        help="keep accepting as requests arrive (attachments, then the associations that follow them) "
        "until nothing waits for --settle seconds, or --timeout",
    )
    accept.add_argument(
        "--timeout", type=float, default=1800.0, help="--watch: give up after (default 1800 s)"
    )
    accept.add_argument(
        "--interval", type=float, default=15.0, help="--watch: seconds between checks (default 15)"
    )
    accept.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="--watch: after an acceptance, keep watching this long for its associations (default 300 s)",
    )
    accept.add_argument("--profile", help="AWS profile (default: the environment's credentials)")
    accept.add_argument("--json", action="store_true", help="print the decisions as JSON")
    accept.set_defaults(handler=run_accept)

    status = commands.add_parser("status", help="(provider account) per-customer state, intruders, quotas")
    _config_region(status)
    status.add_argument("--profile", help="AWS profile (default: the environment's credentials)")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.set_defaults(handler=run_status)


def _config_region(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--region", required=True, help="a region of the config")


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if args.region not in config.regions:
        raise BadInput(
            f"--region {args.region}: not a region of {args.config} (regions: {', '.join(config.regions)})"
        )
    return config


def make_aws(region: str, profile: str | None) -> Aws:
    """Clients for ``region``; the only place sessions are created (tests replace it)."""
    try:
        return Aws(region=region, session=boto3.Session(profile_name=profile))
    except BotoCoreError as err:
        raise AwsFailure(f"account unknown, region {region}, profile {profile}: {err}") from None


def _cluster(args: argparse.Namespace) -> Capacity:
    """The kit's cluster from ``--instance-type``/``--min-capacity``/``--max-capacity``, checked
    by the config's own rules."""
    flags = {"instance_type": "--instance-type", "min": "--min-capacity", "max": "--max-capacity"}
    try:
        cluster = Capacity(instance_type=args.instance_type, min=args.min_capacity, max=args.max_capacity)
        # The customer places its own receivers: no interface count needed here.
        problems = capacity_problems(cluster, places_tasks=False)
    except ValidationError as err:
        problems = validation_problems(err)
    if problems:
        raise ConfigError("onboard kit", [replace(p, path=(flags[str(p.path[0])],)) for p in problems])
    return cluster


def run_kit(args: argparse.Namespace, console: Console) -> ExitStatus:
    from mcastkit.onboard.kit import write_kit

    config = _load(args)
    cluster = _cluster(args) if args.cluster else None
    try:
        kit = write_kit(
            config,
            args.customer,
            args.region,
            args.out,
            subnets_per_domain=args.subnets_per_domain,
            cluster=cluster,
        )
    except OSError as err:
        raise EnvironmentFailure(f"--out {args.out}: cannot write the kit ({err.strerror})") from None
    print(f"wrote the kit for {args.customer} in {args.region} to {kit.directory}:", file=console.out)
    for path in (kit.template, kit.parameters, kit.readme):
        print(f"  {path}", file=console.out)
    if kit.unrecorded:
        print(
            f"note: provider ids not recorded in regions.{args.region}.shared: {', '.join(kit.unrecorded)} "
            "are REPLACE- placeholders; record them after deploying and make the kit again",
            file=console.out,
        )
    customer_only = [p for p in kit.placeholders if p not in kit.unrecorded]
    if customer_only:
        print(f"the customer fills in: {', '.join(customer_only)}", file=console.out)
    return ExitStatus.OK


def _progress(console: Console, as_json: bool) -> Any:
    if as_json:
        return lambda message: None
    if console.interactive:

        def line(message: str) -> None:
            console.out.write(f"\r\033[K{message}")
            console.out.flush()

        return line
    return lambda message: print(message, file=console.err)


def run_join(args: argparse.Namespace, console: Console) -> ExitStatus:
    from mcastkit.onboard.join import join

    region = args.region or region_of_arn(args.share_arn)
    if not args.share_arn.startswith("arn:") or ":resource-share/" not in args.share_arn or region is None:
        raise BadInput(f"--share-arn {args.share_arn!r}: not a RAM resource share ARN ({SHARE_ARN_HINT})")
    if args.timeout <= 0 or args.interval <= 0:
        raise BadInput(f"--timeout {args.timeout} / --interval {args.interval}: must be positive")
    try:
        aws = make_aws(region, args.profile)
        result = join(
            aws,
            args.share_arn,
            timeout_s=args.timeout,
            interval_s=args.interval,
            progress=_progress(console, args.json),
        )
    finally:
        _end_progress(console, args)
    if args.json:
        print(
            json.dumps(vars(result) | {"account": aws.account, "region": region}, indent=2), file=console.out
        )
        return ExitStatus.OK
    print(
        f"joined: account {aws.account}, region {region}: invitation {result.invitation}; "
        f"transit gateway {result.transit_gateway_id} and domain(s) {', '.join(result.domain_ids)} "
        "are visible",
        file=console.out,
    )
    print(
        "next: deploy the customer stack from your kit (README step 2) with "
        f"TransitGatewayId={result.transit_gateway_id} and the domain id(s) above; then tell the provider, "
        "who accepts the attachment and associations (the stack waits until then).",
        file=console.out,
    )
    return ExitStatus.OK


def _end_progress(console: Console, args: argparse.Namespace) -> None:
    if console.interactive and not getattr(args, "json", False):
        console.out.write("\r\033[K")


def run_accept(args: argparse.Namespace, console: Console) -> ExitStatus:
    from mcastkit.onboard.accept import accept, report, watch

    config = _load(args)
    if args.watch and args.dry_run:
        raise BadInput("--watch accepts as requests arrive; it cannot be a --dry-run")
    if min(args.timeout, args.interval) <= 0 or args.settle < 0:
        raise BadInput(
            f"--timeout {args.timeout} / --interval {args.interval} / --settle {args.settle}: "
            "must be positive (--settle may be 0)"
        )
    aws = make_aws(args.region, args.profile)
    stopped_by = None
    if args.watch:
        try:
            result = watch(
                aws,
                config,
                args.region,
                timeout_s=args.timeout,
                interval_s=args.interval,
                settle_s=args.settle,
                progress=_progress(console, args.json),
            )
        finally:
            _end_progress(console, args)
        provider, decisions, stopped_by = result.provider, result.decisions, result.stopped_by
    else:
        provider, decisions = accept(aws, config, args.region, dry_run=args.dry_run)
    shown, status = report(provider, decisions, dry_run=args.dry_run, as_json=args.json)
    if isinstance(shown, dict):
        print(
            json.dumps(shown | ({"stopped_by": stopped_by} if stopped_by else {}), indent=2), file=console.out
        )
    else:
        if stopped_by == "timeout":
            shown.append(f"stopped after --timeout {args.timeout:.0f} s with requests still unverified")
        elif stopped_by == "nothing arrived":
            shown.append(f"no request arrived in --timeout {args.timeout:.0f} s")
        print("\n".join(shown), file=console.out)
    return status


def run_status(args: argparse.Namespace, console: Console) -> ExitStatus:
    from mcastkit.onboard.status import collect_status, render

    config = _load(args)
    try:
        status = collect_status(make_aws(args.region, args.profile), config, args.region)
    except McastkitError as err:
        if args.json:  # a script reading stdout gets a document either way
            print(json.dumps({"region": args.region, "ok": False, "error": err.render()}), file=console.out)
        raise
    if args.json:
        print(json.dumps(status.as_dict(), indent=2), file=console.out)
    else:
        render(status, console.out, color=console.interactive and sys.stdout is console.out)
    return ExitStatus.OK if status.ok else ExitStatus.FAILURE
