"""``mcastkit onboard kit``: what a provider sends one customer for one region.

The kit is three files: the synthesized customer template, a parameters file with the
provider's ids filled in from the config (``regions.<region>.shared``), and a README with
the exact commands. Synthesis happens here, in-process, with no AWS credentials.
Parameters that only the customer knows (VPC, subnets) and provider ids not yet recorded
in the config are placeholders starting with ``REPLACE-``.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mcastkit.config import Capacity, Config, Customer, Region, Stream
from mcastkit.config.names import TRANSIT_GATEWAY_ID_KEY, domain_key, kit_stack_name, pascal, stream_key
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.jsii_node import use_pinned_node

PLACEHOLDER = "REPLACE-"


class KitError(BadInput):
    """A kit that cannot be made from this config (unknown customer, region, or entitlement)."""


class SynthError(EnvironmentFailure):
    """The CDK could not synthesize the template (Node.js missing or broken)."""


@dataclass
class Kit:
    directory: Path
    stack_name: str
    template: Path
    parameters: Path
    readme: Path
    placeholders: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)


def select(config: Config, customer_name: str, region: str) -> Customer:
    """The customer, checked against the config: exists, region configured, entitled there."""
    try:
        customer = config.customer(customer_name)
    except KeyError:
        known = ", ".join(c.name for c in config.customers) or "none"
        raise KitError(f"customer {customer_name!r} is not in the config (customers: {known})") from None
    if region not in config.regions:
        raise KitError(f"region {region!r} is not in the config (regions: {', '.join(config.regions)})")
    if not customer.domains_in(region):
        entitled = sorted({e.region for e in customer.entitlements}) or ["none"]
        raise KitError(
            f"customer {customer_name!r} is not entitled to any domain in region {region!r} "
            f"(entitled regions: {', '.join(entitled)})"
        )
    return customer


def entitled_streams(config: Config, customer: Customer, region: str) -> list[Stream]:
    """The sequenced streams of the domains ``customer`` receives in ``region``: the ones whose
    replay endpoint service allows it (the sharing stack derives both from the same entitlements)."""
    entitled = set(customer.domains_in(region))
    return [s for s in config.regions[region].streams if s.domain in entitled]


def _customer_stacks() -> ModuleType:
    """The customer stack module; the kit is synthesized with the AWS CDK (the ``cdk`` extra)."""
    try:
        return importlib.import_module("mcastkit.stacks.customer")
    except ImportError as err:
        raise KitError(
            f"the kit is synthesized with the AWS CDK ({err}): pip install 'mcastkit[cdk]'"
        ) from None


def _check_subnet_count(domains: int, subnets_per_domain: int | None) -> None:
    stacks = _customer_stacks()
    limit: int = stacks.MAX_RECEIVER_SUBNETS
    per_domain = stacks.DEFAULT_SUBNETS_PER_DOMAIN if subnets_per_domain is None else subnets_per_domain
    if not 1 <= per_domain * domains <= limit:
        raise KitError(
            f"--subnets-per-domain {per_domain}: {domains} domain(s) x {per_domain} subnet(s) must be 1 to "
            f"{limit}, one availability zone each (a VPC attachment takes one subnet per zone)"
        )


def synth_template(
    config: Config,
    customer: Customer,
    region: str,
    *,
    subnets_per_domain: int | None = None,
    cluster: Capacity | None = None,
) -> dict[str, Any]:
    """The customer stack's CloudFormation template (no credentials, no lookups)."""
    use_pinned_node()
    import aws_cdk as cdk

    CustomerStack = _customer_stacks().CustomerStack

    shared = config.regions[region].shared
    domains = [config.regions[region].domain(name) for name in customer.domains_in(region)]
    with tempfile.TemporaryDirectory(prefix="mcastkit-kit-") as outdir:
        app = cdk.App(outdir=outdir, context={"@aws-cdk/core:validateAgainstDefaultRules": True})
        stack = CustomerStack(
            app,
            kit_stack_name(config.project, customer.name, region),
            domains=domains,
            subnets_per_domain=subnets_per_domain,
            transit_gateway_id=shared.transit_gateway_id if shared else None,
            domain_ids=dict(shared.domain_ids) if shared else None,
            cluster=cluster,
            streams=entitled_streams(config, customer, region),
            endpoint_service_names=dict(shared.endpoint_services) if shared else None,
            env=cdk.Environment(account=customer.principal if customer.is_account else None, region=region),
        )
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template


def parameter_values(
    config: Config, customer: Customer, region: str, template: dict[str, Any]
) -> dict[str, str]:
    """Every template parameter with a value: the provider's ids, or a ``REPLACE-`` placeholder."""
    shared = config.regions[region].shared
    known: dict[str, str] = {}
    if shared is not None:
        known[TRANSIT_GATEWAY_ID_KEY] = shared.transit_gateway_id
        for name, domain_id in shared.domain_ids.items():
            known[domain_key(name)] = domain_id
        for name, service in shared.endpoint_services.items():
            known[stream_key(name, "Name")] = service
    values: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in known:
            values[name] = known[name]
        elif spec.get("Type") == "AWS::EC2::VPC::Id":
            values[name] = f"{PLACEHOLDER}your-vpc-id"
        elif name == "VpcCidr":
            values[name] = f"{PLACEHOLDER}your-vpc-cidr"
        elif spec.get("Type") == "AWS::EC2::Subnet::Id":
            values[name] = f"{PLACEHOLDER}your-{_kebab(name)}-id"
        elif spec.get("Type") == "List<AWS::EC2::Subnet::Id>":
            values[name] = f"{PLACEHOLDER}your-{_kebab(name)}-ids"
        elif _shared(name):
            values[name] = f"{PLACEHOLDER}provider-{_kebab(name)}-not-yet-recorded"
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            values[name] = f"{PLACEHOLDER}{_kebab(name)}"
    return values


def _static_members(region_config: Region, domains: list[str], region: str) -> list[str]:
    """For a static domain: receivers must be registered as members, or nothing reaches them."""
    lines: list[str] = []
    for name in domains:
        domain = region_config.domain(name)
        if domain.igmpv2:
            continue
        lines += [
            f"**{name} is a static domain:** the Transit Gateway forwards only to registered members, "
            "and IGMP joins do nothing. After the associations are accepted, register each receiver's "
            "network interface for each group (and deregister it before you remove the interface: "
            "the gateway ignores an IGMP leave from a registered member):",
            "",
            "```sh",
            *[
                f"aws ec2 register-transit-gateway-multicast-group-members --region {region} "
                f"--transit-gateway-multicast-domain-id <{name}-domain-id> --group-ip-address {g.address} "
                "--network-interface-ids <eni-id>"
                for g in domain.groups
            ],
            "```",
            "",
        ]
    return lines


def _who(customer: Customer) -> str:
    if customer.is_account:
        return f"your AWS account {customer.principal}"
    return f"your accounts under the Organizations OU {customer.principal}"


def _shared(parameter: str) -> bool:
    return (
        parameter == TRANSIT_GATEWAY_ID_KEY
        or parameter.endswith(domain_key(""))
        or parameter.endswith(stream_key("", "Name"))
    )


def _kebab(name: str) -> str:
    out = ""
    for char in name:
        out += f"-{char.lower()}" if char.isupper() and out else char.lower()
    return out


def write_kit(
    config: Config,
    customer_name: str,
    region: str,
    out: Path,
    *,
    subnets_per_domain: int | None = None,
    cluster: Capacity | None = None,
) -> Kit:
    customer = select(config, customer_name, region)
    _check_subnet_count(len(customer.domains_in(region)), subnets_per_domain)
    use_pinned_node()  # a missing or old Node is named as such, not as a synth failure
    try:
        template = synth_template(
            config, customer, region, subnets_per_domain=subnets_per_domain, cluster=cluster
        )
    except Exception as err:  # jsii/Node failures surface as bare RuntimeErrors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SynthError(f"cannot synthesize the customer template: {first}") from err
    values = parameter_values(config, customer, region, template)
    stack_name = kit_stack_name(config.project, customer.name, region)
    out.mkdir(parents=True, exist_ok=True)
    kit = Kit(
        directory=out,
        stack_name=stack_name,
        template=out / f"{stack_name}.template.json",
        parameters=out / "parameters.json",
        readme=out / "README.md",
        placeholders=[k for k, v in values.items() if v.startswith(PLACEHOLDER)],
        unrecorded=[k for k, v in values.items() if v.startswith(f"{PLACEHOLDER}provider-")],
    )
    kit.template.write_text(json.dumps(template, indent=1) + "\n", encoding="utf-8")
    kit.parameters.write_text(
        json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()], indent=2) + "\n",
        encoding="utf-8",
    )
    kit.readme.write_text(readme(config, customer, region, kit, values, template), encoding="utf-8")
    return kit


def readme(
    config: Config,
    customer: Customer,
    region: str,
    kit: Kit,
    values: dict[str, str],
    template: dict[str, Any],
) -> str:
    region_config = config.regions[region]
    shared = region_config.shared
    domains = customer.domains_in(region)
    subnet_params = [k for k, s in template["Parameters"].items() if s.get("Type") == "AWS::EC2::Subnet::Id"]
    overrides = " \\\n    ".join(f"{k}={v}" for k, v in values.items() if k in kit.placeholders or _shared(k))
    needs_iam = any(r.get("Type") == "AWS::IAM::Role" for r in template.get("Resources", {}).values())
    in_org = customer.organization_id is not None
    share_lines = []
    for domain in domains:
        arn = shared.share_arns.get(domain) if shared else None
        share_lines.append(
            "mcastkit onboard join --share-arn "
            + (arn or f"{PLACEHOLDER}share-arn-of-{domain}-from-the-provider")
        )
    groups = [(d, g) for d in domains for g in region_config.domain(d).groups]
    auto = [d for d in domains if region_config.domain(d).auto_accept_shared_associations]
    lines = [
        f"# Multicast from {config.project}: {customer.name} in {region}",
        "",
        f"This kit connects {_who(customer)} in {region} to {config.project}'s multicast through its "
        "shared Transit Gateway. You receive these domains and groups:",
        "",
        "| domain | group | address | UDP port |",
        "| --- | --- | --- | --- |",
        *[f"| {d} | {g.name} | {g.address} | {g.port} |" for d, g in groups],
        "",
        "Files: `" + kit.template.name + "` (CloudFormation template), `parameters.json` "
        "(parameter values), this README.",
        "",
    ]
    if kit.placeholders:
        lines += [
            "## Placeholders",
            "",
            "Values starting with `REPLACE-` must be filled in before deploying:",
            "",
            *[f"- `{k}`" for k in kit.placeholders],
            "",
        ]
    if kit.unrecorded:
        lines += [
            f"**The provider has not recorded its ids for {region} yet** ({', '.join(kit.unrecorded)}): "
            "ask the provider for them, or for a new kit once they are recorded.",
            "",
        ]
    lines += [
        "## Before you start: receiver subnets",
        "",
        f"Create {len(subnet_params)} receiver subnet(s) in your VPC ({', '.join(subnet_params)}). "
        "A subnet can belong to one multicast domain only, and a Transit Gateway VPC attachment takes "
        "one subnet per availability zone, so **every receiver subnet must be in a different "
        "availability zone**. Compare zones by AZ id (e.g. `euw2-az1`), not name: names differ "
        "between accounts. Receivers for a domain run in that domain's subnets.",
        "",
        "The stack gives these subnets their own network ACL (IGMP from the Transit Gateway, UDP from "
        f"{config.project}'s senders, IGMP/UDP to the groups, HTTPS out and its replies, and all traffic "
        "with your VPC's CIDR, parameter `VpcCidr`) and creates a receivers security group (output "
        "`ReceiverSecurityGroupId`). Use the subnets for multicast receivers: anything else beyond your "
        "VPC is denied by that ACL.",
        "",
        *(
            [
                "The stack also runs an ECS cluster on EC2 whose hosts force IGMPv2 (output "
                "`ReceiverClusterName`). Its hosts have no public IP: the receiver subnets need a route "
                "to the ECS, ECR and CloudWatch Logs endpoints (NAT gateway or VPC endpoints).",
                "",
            ]
            if needs_iam
            else []
        ),
        "## 1. Accept the share",
        "",
        "The `mcastkit` commands below need Python 3.11+ and mcastkit installed where you run them "
        "(the AWS console and CLI work too).",
        "",
    ]
    if in_org:
        lines += [
            f"Your account is in {config.project}'s AWS Organization: there is no invitation to accept. "
            "`join` checks that the Transit Gateway and domains are visible:",
            "",
        ]
    else:
        lines += [
            "Accept the RAM invitation (one per domain) with credentials for account "
            f"{customer.principal}, or in the RAM console (Shared with me > Resource shares):",
            "",
        ]
    lines += ["```sh", *share_lines, "```", ""]
    lines += [
        "`join` waits (default 5 minutes) until the Transit Gateway and the domains are visible, and can "
        "be run again safely.",
        "",
        "## 2. Deploy the stack",
        "",
        "```sh",
        "aws cloudformation deploy \\",
        f"  --region {region} \\",
        f"  --stack-name {kit.stack_name} \\",
        f"  --template-file {kit.template.name} \\",
        *(["  --capabilities CAPABILITY_IAM \\"] if needs_iam else []),
        f"  --parameter-overrides \\\n    {overrides}",
        "```",
        "",
        f"(or `aws cloudformation create-stack --region {region} --stack-name {kit.stack_name} "
        f"--template-body file://{kit.template.name} --parameters file://parameters.json"
        + (" --capabilities CAPABILITY_IAM" if needs_iam else "")
        + "`).",
        "",
    ]
    lines += [
        "**The deployment waits for the provider, twice.** In this order:",
        "",
        "1. CloudFormation creates the Transit Gateway attachment; it stays `pendingAcceptance` until "
        f"{config.project} accepts it.",
        "2. Once it is `available`, CloudFormation creates one domain association per receiver subnet; "
        f"each stays `pendingAcceptance` until {config.project} accepts it.",
        "",
        "Each wait gives up after about 20 minutes (the CloudFormation handlers' default; inferred from "
        "their source, not documented), and the stack rolls back. So tell the provider before you start: "
        f"they run `mcastkit onboard accept --region {region} --watch`, which accepts both as they arrive "
        "(unless they turned on auto-accept).",
        "",
        *(
            [
                f"Subnet associations with {', '.join(auto)} are accepted automatically; "
                "the attachment may still wait.",
                "",
            ]
            if auto
            else []
        ),
        *_static_members(region_config, domains, region),
        "## 3. Verify",
        "",
        "On an instance in a receiver subnet, with the `ReceiverSecurityGroupId` security group and "
        "IGMPv2 forced (the Transit Gateway speaks IGMPv2 only; `sysctl -w` alone is lost at reboot, so "
        "also write it to a file: `echo net.ipv4.conf.all.force_igmp_version=2 | sudo tee "
        "/etc/sysctl.d/90-igmpv2.conf && sudo sysctl --system`):",
        "",
        "```sh",
        *[_verify_command(region_config, d) for d in domains],
        "```",
        "",
        "A probe group carries only the provider's probe stream: its receiver reports every 10 s what "
        "arrived, what was lost and the one-way latency, and exits 1 if an interval lost any. A domain "
        "without a probe is watched passively on its first feed group (`--passive`: the feed's rate, "
        "sizes and silences; it exits 1 if nothing arrived). Never run a probe sender on a feed group.",
        "",
        f"{config.project} sees your receivers as group members in `mcastkit onboard status`.",
        "",
        *_stream_lines(config, customer, region, values),
    ]
    return "\n".join(lines)


def _verify_command(region: Region, domain: str) -> str:
    """How a customer proves delivery of ``domain``: the provider's probe stream where one is sent,
    else a passive watch of the domain's first feed group (a probe receiver there would count the
    feed as foreign datagrams and report everything lost)."""
    probes = region.probe_senders(domain)
    if probes:
        group = probes[0]
        return (
            f"mcastkit probe recv --group {group.address}:{group.port} --interface <receiver-ip> "
            "--count 0 --report-every 10 --timeout 30"
        )
    groups = region.domain(domain).groups
    feed = next((g for g in groups if not g.probe), groups[0])
    return (
        f"mcastkit probe recv --passive --group {feed.address}:{feed.port} --interface <receiver-ip> "
        "--timeout 30"
    )


def _stream_lines(config: Config, customer: Customer, region: str, values: dict[str, str]) -> list[str]:
    """The sequenced streams: what they are, where the endpoint may go, how to receive and replay."""
    streams = entitled_streams(config, customer, region)
    if not streams:
        return []
    region_config = config.regions[region]
    lines = [
        "## 4. Sequenced streams: receive, and replay through PrivateLink",
        "",
        f"{config.project} numbers these feeds and publishes them as MoldUDP64 on a group of their own. "
        "A gap (a lost datagram, a late start) is filled by SoupBinTCP replay over TCP, through an "
        "interface VPC endpoint this stack makes in your VPC (AWS PrivateLink): the Transit Gateway "
        "carries multicast only, so this is your one path back to the provider (MoldUDP64 re-requests, "
        "which go unicast, cannot reach it). The endpoint service allows exactly the accounts entitled to "
        "the stream's domain, yours among them, and accepts the endpoint without a manual step.",
        "",
        "| stream | domain | group | address | UDP port | replay TCP port |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for stream in streams:
        group = region_config.domain(stream.domain).group(stream.output)
        lines.append(
            f"| {stream.name} | {stream.domain} | {group.name} | {group.address} | {group.port} "
            f"| {stream.replay_port} |"
        )
    lines += [
        "",
        "**Where the endpoint can go.** An interface endpoint can be created only in availability zones "
        f"where {config.project}'s endpoint service runs, and zones are matched by AZ id (names such as "
        f"`{region}a` differ between accounts). List the zones, as your account names them, before you "
        "choose the subnets (parameters ending in `EndpointSubnets`, one subnet per zone, comma-separated; "
        "any subnets of your VPC, not only the receiver subnets):",
        "",
        "```sh",
        *[
            f"aws ec2 describe-vpc-endpoint-services --region {region} --service-names "
            f"{values.get(stream_key(s.name, 'Name'), '<service-name>')} "
            "--query 'ServiceDetails[0].AvailabilityZones'"
            for s in streams
        ],
        "```",
        "",
        "The endpoint's security group admits the replay port from the receivers security group only. "
        "After the deploy, the stack's output `<Stream>Replay` is the endpoint's DNS name and port. On a "
        "receiver (IGMPv2 forced, as above):",
        "",
        "```sh",
        *[
            f"mcastkit stream recv --group {region_config.domain(s.domain).group(s.output).group_port} "
            f"--interface <receiver-ip> --replay <output {pascal(s.name)}Replay>"
            for s in streams
        ],
        "```",
        "",
        "(for example `--replay vpce-0123456789abcdef0-abcdefgh.vpce-svc-0123456789abcdef0."
        f"{region}.vpce.amazonaws.com:{streams[0].replay_port}`).",
        "",
    ]
    return lines
