"""``mcastkit doctor``: explain why multicast does not arrive on this host.

One line per finding, ``PROBLEM``, ``WARN`` or ``ok``, each naming what it is about and, for a
problem, the command or config change that fixes it; ``--json`` prints one document instead
(also when a check stops the run early, with an ``error``). Exit 0 without problems, 1 with any,
2 for a bad argument, 3 when the environment stops the checks (no root for ``--netns`` or
``--listen``, an AWS call refused).

Arguments arrive as strings and are checked by :meth:`DoctorOptions.parse`, so a bad one is one
line naming it, not argparse's usage text.
"""

from __future__ import annotations

import argparse
from typing import Any

from mcastkit.commands.onboard import make_aws
from mcastkit.console import Console
from mcastkit.doctor import Diagnosis, DoctorOptions, Finding, Host, run_checks
from mcastkit.errors import McastkitError
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="explain why multicast does not arrive on this host",
        description="Check the host (IGMP version, memberships, routes, rp_filter, offloads; with "
        "--listen, the wire) and with --aws the Transit Gateway domain, security groups and network ACL.",
    )
    parser.add_argument(
        "--interface",
        metavar="IF",
        help="the multicast interface's name (default: the interface the kernel routes the first "
        "--group, or multicast, by)",
    )
    parser.add_argument(
        "--group",
        action="append",
        metavar="GROUP:PORT",
        help="a group that should arrive; repeatable (default: report the groups joined)",
    )
    parser.add_argument(
        "--source",
        action="append",
        metavar="ADDRESS|CIDR",
        help="a sender's address; repeatable: the route back to it (rp_filter) and the UDP rules it "
        "needs are checked (default: senders unknown)",
    )
    parser.add_argument(
        "--listen",
        metavar="SECONDS",
        help="capture on the interface this long (root): TTLs and IGMP messages on the wire "
        "(default 0: no capture)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--aws",
        action="store_true",
        help="also check AWS: the ENI's domain, association, membership, security groups and network ACL",
    )
    parser.add_argument("--region", help="--aws: the region (default: AWS_REGION or the profile's)")
    parser.add_argument(
        "--eni", help="--aws: the interface's ENI id (default: found by its MAC, in the instance metadata)"
    )
    parser.add_argument(
        "--domain",
        metavar="TGW-MCAST-DOMAIN-ID",
        help="--aws: the multicast domain (default: the one the ENI's subnet is associated with)",
    )
    parser.add_argument(
        "--netns",
        action="append",
        metavar="NAME",
        help="run the checks inside this named network namespace instead (root); repeatable",
    )
    parser.add_argument(
        "--all-netns", action="store_true", help="run the checks inside every named network namespace (root)"
    )
    parser.set_defaults(handler=run)


def local_host() -> Host:
    """The machine the local checks read: this one (tests replace it with a fake tree)."""
    return Host()


def _clients(region: str) -> Aws:
    return make_aws(region, None)


def run(args: argparse.Namespace, console: Console) -> ExitStatus:
    findings: list[Finding] = []
    try:
        options = DoctorOptions.parse(
            interface=args.interface,
            groups=args.group or (),
            sources=args.source or (),
            listen=args.listen,
            aws=args.aws,
            region=args.region,
            eni=args.eni,
            domain=args.domain,
            namespaces=args.netns or (),
            all_namespaces=args.all_netns,
        )
        for finding in run_checks(options, host=local_host(), make_aws=_clients):
            findings.append(finding)
            if not args.json:
                print(finding.line(), file=console.out, flush=True)
    except McastkitError as err:
        if args.json:  # a script reading stdout gets a document either way
            print(Diagnosis.of(findings, err.render()).to_json(), file=console.out)
        raise
    diagnosis = Diagnosis.of(findings)
    print(diagnosis.to_json() if args.json else diagnosis.summary(), file=console.out)
    return ExitStatus.FAILURE if diagnosis.problems else ExitStatus.OK
