"""``mcastkit plan``: the resource schemas it reads, the diff rules, and the matrix of routine config
changes: each deploys without replacing anything customers depend on, or plan refuses it and says why."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcastkit.cli import Console, main
from mcastkit.config import Config, parse_config
from mcastkit.exit import ExitStatus
from mcastkit.plan.diff import Action, Plan, plan
from mcastkit.plan.impact import impacts, revoked, worst
from mcastkit.plan.schemas import CREATE_ONLY
from mcastkit.plan.templates import Templates, kit_templates, provider_templates

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-2"
SECRET = "arn:aws:secretsmanager:eu-west-2:111111111111:secret:relay-{}-AbCdEf"


# The diff rules, on small templates ---------------------------------------------------------------


def _stack(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Resources": resources, **({"Outputs": outputs} if outputs else {})}


def _association(subnet: str) -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::TransitGatewayMulticastDomainAssociation",
        "Properties": {"TransitGatewayMulticastDomainId": {"Ref": "Domain"}, "SubnetId": subnet},
    }


def _domain(auto_accept: str = "disable") -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::TransitGatewayMulticastDomain",
        "Properties": {"TransitGatewayId": "tgw-1", "Options": {"AutoAcceptSharedAssociations": auto_accept}},
    }


def _actions(result: Plan) -> dict[str, Action]:
    return {c.logical_id: c.action for c in result.changes}


def test_a_create_only_change_replaces_and_another_updates_in_place() -> None:
    old = {"s": _stack({"Domain": _domain(), "A": _association("subnet-1")})}
    new = {"s": _stack({"Domain": {**_domain(), "Metadata": {"x": 1}}, "A": _association("subnet-2")})}
    result = plan(old, new)
    assert _actions(result) == {"A": Action.REPLACE}
    assert result.changes[0].why == "SubnetId is create-only" and result.changes[0].refused


def test_an_option_the_handler_ignores_is_a_replacement_and_its_references_follow() -> None:
    old = {"s": _stack({"Domain": _domain(), "A": _association("subnet-1")})}
    new = {"s": _stack({"Domain": _domain("enable"), "A": _association("subnet-1")})}
    result = plan(old, new)
    assert _actions(result) == {"Domain": Action.REPLACE, "A": Action.REPLACE}
    by_id = {c.logical_id: c for c in result.changes}
    assert "Options cannot change after creation" in by_id["Domain"].why
    assert by_id["A"].why == "TransitGatewayMulticastDomainId is create-only"  # its Ref gets a new id


def test_a_type_change_replaces_and_unknown_resources_are_added_or_removed() -> None:
    vpc_attachment = {"Type": "AWS::EC2::TransitGatewayVpcAttachment", "Properties": {"SubnetIds": ["a"]}}
    attachment = {"Type": "AWS::EC2::TransitGatewayAttachment", "Properties": {"SubnetIds": ["a"]}}
    old = {"s": _stack({"Att": vpc_attachment, "Gone": _association("x")})}
    new = {"s": _stack({"Att": attachment, "New": _association("y")})}
    assert _actions(plan(old, new)) == {"Att": Action.REPLACE, "Gone": Action.REMOVE, "New": Action.ADD}


def test_attachment_subnets_update_in_place_but_not_on_the_old_vpc_attachment() -> None:
    for type_, action in (
        ("AWS::EC2::TransitGatewayAttachment", Action.UPDATE),
        ("AWS::EC2::TransitGatewayVpcAttachment", Action.REPLACE),
    ):
        old = {"s": _stack({"Att": {"Type": type_, "Properties": {"SubnetIds": ["a"]}}})}
        new = {"s": _stack({"Att": {"Type": type_, "Properties": {"SubnetIds": ["a", "b"]}}})}
        assert _actions(plan(old, new)) == {"Att": action}


def test_a_changed_parameter_default_changes_what_refers_to_it() -> None:
    """A kit made again with newly recorded ids: the parameter's default changes, not the text of
    the association, which is replaced all the same."""
    association = {
        "Type": "AWS::EC2::TransitGatewayMulticastDomainAssociation",
        "Properties": {"TransitGatewayMulticastDomainId": {"Ref": "DomainId"}, "SubnetId": "subnet-1"},
    }
    old = {
        "kit": {
            "Parameters": {"DomainId": {"Type": "String", "Default": "tgw-mcast-domain-0a"}},
            "Resources": {"A": association},
        }
    }
    new = {
        "kit": {
            "Parameters": {"DomainId": {"Type": "String", "Default": "tgw-mcast-domain-0b"}},
            "Resources": {"A": association},
        }
    }
    assert _actions(plan(old, new)) == {"A": Action.REPLACE}


def test_a_nested_create_only_property_that_refers_to_a_replaced_resource_is_a_replacement() -> None:
    group = {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {"AutoScalingGroupName": "a"}}
    provider = {
        "Type": "AWS::ECS::CapacityProvider",
        "Properties": {
            "AutoScalingGroupProvider": {
                "AutoScalingGroupArn": {"Ref": "Group"},
                "ManagedDraining": "ENABLED",
            }
        },
    }
    old = {"s": _stack({"Group": group, "Provider": provider})}
    new = {
        "s": _stack({"Group": {**group, "Properties": {"AutoScalingGroupName": "b"}}, "Provider": provider})
    }
    result = plan(old, new)
    assert _actions(result) == {"Group": Action.REPLACE, "Provider": Action.REPLACE}
    assert (
        "AutoScalingGroupProvider/AutoScalingGroupArn is create-only"
        in {c.logical_id: c for c in result.changes}["Provider"].why
    )


def _exporter(value: Any) -> dict[str, Any]:
    return _stack({"Domain": _domain()}, {"DomainArn": {"Value": value, "Export": {"Name": "net-DomainArn"}}})


def _importer(imports: bool) -> dict[str, Any]:
    arns = [{"Fn::ImportValue": "net-DomainArn"}] if imports else []
    return _stack(
        {"Share": {"Type": "AWS::RAM::ResourceShare", "Properties": {"ResourceArns": arns, "Name": "x"}}}
    )


def test_an_export_dropped_while_imported_puts_the_importer_first() -> None:
    old = {"net": _exporter({"Ref": "Domain"}), "share": _importer(True)}
    new = {"net": _stack({"Domain": _domain()}), "share": _importer(False)}
    result = plan(old, new, order=["net", "share"])
    [export] = result.exports
    assert (export.name, export.removed, export.importers, export.still_imported_by) == (
        "net-DomainArn",
        True,
        ("share",),
        (),
    )
    assert result.order == ["share", "net"]


def test_an_export_changed_while_still_imported_has_no_order() -> None:
    old = {"net": _exporter({"Ref": "Domain"}), "share": _importer(True)}
    new = {"net": _exporter({"Fn::GetAtt": ["Domain", "Arn"]}), "share": _importer(True)}
    result = plan(old, new, order=["net", "share"])
    assert result.order is None and "refuses to change an export in use" in result.blocked
    assert not result.safe


def test_a_new_export_puts_its_importer_after_the_exporter() -> None:
    old = {"net": _stack({"Domain": _domain()}), "share": _importer(False)}
    new = {"net": _exporter({"Ref": "Domain"}), "share": _importer(True)}
    assert plan(old, new, order=["share", "net"]).order == ["net", "share"]


# The schemas ---------------------------------------------------------------------------------------


def test_the_create_only_table_matches_the_resource_schemas(example_app: Any, example_config: Config) -> None:
    """Every resource type the stacks (provider and customer) make is in the table, as the CloudFormation
    resource schemas that cfn-lint ships say."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    types = {
        r["Type"]
        for stack in example_app.assembly.stacks
        for r in stack.template["Resources"].values()
        if r["Type"].startswith("AWS::") and r["Type"] != "AWS::CDK::Metadata"
    }
    for template in kit_templates(example_config, "alpha-trading", REGION).values():
        types |= {r["Type"] for r in template["Resources"].values()}
    assert "AWS::EC2::TransitGatewayAttachment" in types
    for type_ in sorted(types):
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, type_).schema
        expected = tuple(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", []))
        assert CREATE_ONLY.get(type_) == expected, type_


# The matrix of routine changes ---------------------------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def _base() -> dict[str, Any]:
    """The example's London region and its customers: one region keeps the synths few."""
    data = yaml.safe_load((ROOT / "config" / "example.yaml").read_text(encoding="utf-8"))
    del data["regions"]["ap-northeast-1"]
    data["customers"] = [c for c in data["customers"] if c["name"] != "venue-analytics"]
    for customer in data["customers"]:
        customer["entitlements"] = [e for e in customer["entitlements"] if e["region"] == REGION]
    return data


def _london(data: dict[str, Any]) -> dict[str, Any]:
    region: dict[str, Any] = data["regions"][REGION]
    return region


def _fourth_zone(data: dict[str, Any]) -> None:
    _london(data)["availability_zones"].append("eu-west-2d")


def _add_domain(data: dict[str, Any]) -> None:
    _fourth_zone(data)
    london = _london(data)
    london["subnets"].append({"cidr": "10.20.20.0/24", "availability_zone": "eu-west-2d", "domain": "news"})
    london["domains"].append(
        {
            "name": "news",
            "source_cidrs": ["10.20.20.0/24"],
            "groups": [{"name": "h", "address": "239.10.3.1", "port": 32001}],
        }
    )


def _add_subnet(data: dict[str, Any]) -> None:
    _fourth_zone(data)
    london = _london(data)
    london["subnets"].append(
        {"cidr": "10.20.2.0/24", "availability_zone": "eu-west-2d", "domain": "market-data"}
    )
    london["domains"][0]["source_cidrs"].append("10.20.2.0/24")


def _remove_domain(data: dict[str, Any]) -> None:
    london = _london(data)
    london["domains"].pop(1)
    london["subnets"].pop(2)
    data["customers"][0]["entitlements"][0]["domains"] = ["market-data"]


def _reorder(data: dict[str, Any]) -> None:
    subnets = _london(data)["subnets"]
    subnets[0], subnets[1] = subnets[1], subnets[0]


def _eks_node_zone(data: dict[str, Any]) -> None:
    _add_subnet(data)
    _london(data)["eks"]["node_subnets"].append({"cidr": "10.20.52.0/24", "availability_zone": "eu-west-2d"})


def _entitle(data: dict[str, Any]) -> None:
    data["customers"][1]["entitlements"][0]["domains"].append("reference-data")


#: (id, the change, safe to deploy, resources replaced or removed (logical id prefixes), what plan says)
# fmt: off
MATRIX: list[tuple[str, Change, bool, set[str], str]] = [
    ("add-customer", lambda d: d["customers"].append(
        {"name": "gamma", "principal": "444444444444", "entitlements": [{"region": REGION, "domains": ["market-data"]}]}),
     True, set(), ""),
    ("remove-customer", lambda d: d["customers"].pop(1), True, set(), "beta-capital loses domain market-data (revoked)"),
    ("remove-the-last-customer-of-a-domain", lambda d: d["customers"].pop(0), True, {"ShareReferenceData"},
     "alpha-trading loses domain reference-data: the share is removed"),
    ("entitle-to-another-domain", _entitle, True, set(), ""),
    # The relay's --allow list gains the group: a new task definition, the new task started first.
    ("add-group", lambda d: _london(d)["domains"][0]["groups"].append({"name": "sol-book", "address": "239.10.1.4", "port": 30004}),
     True, {"RelayTaskDefinition"}, ""),
    ("add-subnet-in-a-free-zone", _add_subnet, True, set(), ""),
    ("add-domain", _add_domain, True, set(), ""),
    ("reorder-subnets", _reorder, True, set(), ""),
    ("change-capacity", lambda d: _london(d)["capacity"].update(min=3, max=5), True, set(), ""),
    ("rotate-relay-secret", lambda d: _london(d)["relay"].update(secret_arn=SECRET.format("b")), True, {"RelayTaskDefinition"}, ""),
    ("remove-domain", _remove_domain, False,
     {"MulticastDomainReferenceData", "DomainReferenceDataAssociation", "NetworkSubnet102010024Subnet", "ShareReferenceData",
      "NetworkSubnet102010024RouteTable", "MembersEgress", "MembersIngress", "MembersNetworkAclDefaultAssociation"},
     "alpha-trading loses domain reference-data"),
    # EKS: a zone of nodes is a launch template and a group of its own; the cluster gains a subnet
    # in place (ResourcesVpcConfig is not create-only). Nothing in the other zones changes.
    ("eks-add-node-zone", _eks_node_zone, True, set(), ""),
    ("eks-more-nodes", lambda d: _london(d)["eks"].update(nodes_per_zone=3), True, set(), ""),
    ("eks-add-admin", lambda d: _london(d)["eks"]["admin_roles"].append("arn:aws:iam::111111111111:role/oncall"),
     True, set(), ""),
    # A new version: the cluster upgrades in place, new launch template versions roll the nodes.
    ("eks-upgrade-kubernetes", lambda d: _london(d)["eks"].update(kubernetes_version="1.36"), True, set(), ""),
    ("eks-change-instance-type", lambda d: _london(d)["eks"].update(instance_type="c6in.2xlarge"), True, set(), ""),
    ("toggle-auto-accept", lambda d: _london(d)["domains"][1].update(auto_accept_shared_associations=True), False,
     {"MulticastDomainReferenceData", "DomainReferenceDataAssociation"}, "Options cannot change after creation"),
]
# fmt: on


@pytest.fixture(scope="module")
def synthesized() -> Callable[[dict[str, Any]], Templates]:
    cache: dict[str, Templates] = {}

    def synth(data: dict[str, Any]) -> Templates:
        key = json.dumps(data, sort_keys=True)
        if key not in cache:
            cache[key] = provider_templates(parse_config(data))
        return cache[key]

    return synth


@pytest.mark.parametrize(
    ("change", "safe", "replaced", "says"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX]
)
def test_a_routine_change(
    synthesized: Callable[[dict[str, Any]], Templates],
    change: Change,
    safe: bool,
    replaced: set[str],
    says: str,
) -> None:
    before = _base()
    _london(before)["relay"]["secret_arn"] = SECRET.format("a")
    after = copy.deepcopy(before)
    change(after)
    old_config, new_config = parse_config(before), parse_config(after)
    result = plan(
        synthesized(before),
        synthesized(after),
        order=[old_config.stack_name(REGION, k) for k in ("network", "sharing", "compute", "eks")],
    )
    gone = {c.logical_id for c in result.changes if c.action in (Action.REPLACE, Action.REMOVE)}
    assert {prefix for prefix in replaced if any(g.startswith(prefix) for g in gone)} == replaced, gone
    assert all(any(g.startswith(p) for p in replaced) for g in gone), gone
    assert result.changes, "a change that changes nothing tests nothing"
    assert result.safe is safe, [c for c in result.refused]
    if safe:
        assert result.exports == [] or all(not e.still_imported_by or not e.locked for e in result.exports)
    text = [
        f"{i.customer} loses {i.what}"
        for i in worst(impacts(result, old_config) + revoked(old_config, new_config))
    ]
    text += [c.why for c in result.changes]
    assert not says or any(says in line for line in text), text
    if not says and safe:
        assert text == [c.why for c in result.changes], "a safe change cuts nobody off"


def test_removing_a_domain_deploys_sharing_before_network(
    synthesized: Callable[[dict[str, Any]], Templates],
) -> None:
    before = _base()
    after = copy.deepcopy(before)
    _remove_domain(after)
    stacks = [f"venue-md-{REGION}-{k}" for k in ("network", "sharing", "compute", "eks")]
    result = plan(synthesized(before), synthesized(after), order=stacks)
    # The compute stack's hosts are only in the relay's and probe's domain, the EKS nodes in the
    # pods' (market-data): neither reads anything that goes.
    assert result.order == [stacks[1], stacks[0], stacks[2], stacks[3]]
    assert {e.name for e in result.exports if e.locked} == {
        f"venue-md-{REGION}-network-ReferenceDataDomainArn"
    }


def test_a_kit_gains_a_domain_without_replacing_its_attachment() -> None:
    before = parse_config(_base())
    data = _base()
    _entitle(data)
    after = parse_config(data)
    result = plan(kit_templates(before, "beta-capital", REGION), kit_templates(after, "beta-capital", REGION))
    by_type = {(c.type, c.action) for c in result.changes}
    assert ("AWS::EC2::TransitGatewayAttachment", Action.UPDATE) in by_type
    assert ("AWS::EC2::TransitGatewayMulticastDomainAssociation", Action.ADD) in by_type
    assert result.refused == [] and result.safe


def test_removing_the_first_eks_admin_removes_its_entry_only(
    synthesized: Callable[[dict[str, Any]], Templates],
) -> None:
    """Access entries are named after their role: the principal is create-only, and an entry named
    by its place in the list would be replaced by the next role's, which EKS refuses."""
    before = _base()
    _london(before)["eks"]["admin_roles"].append("arn:aws:iam::111111111111:role/oncall")
    after = copy.deepcopy(before)
    _london(after)["eks"]["admin_roles"].pop(0)
    result = plan(synthesized(before), synthesized(after), order=[f"venue-md-{REGION}-eks"])
    assert [(c.type, c.action) for c in result.changes] == [("AWS::EKS::AccessEntry", Action.REMOVE)]
    assert result.safe


# The command ---------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(argv, console)
    return status, console.out.getvalue(), console.err.getvalue()


def test_plan_exits_1_on_a_refused_change_and_0_when_allowed(tmp_path: Path) -> None:
    before, after = _base(), _base()
    _london(after)["domains"][1]["auto_accept_shared_associations"] = True
    old, new = _write(tmp_path, "old.yaml", before), _write(tmp_path, "new.yaml", after)
    status, out, err = _run(["plan", str(old), str(new)])
    assert status == ExitStatus.FAILURE and err == ""
    assert (
        "! AWS::EC2::TransitGatewayMulticastDomain MulticastDomainReferenceData: Options cannot change" in out
    )
    assert "refused; pass --allow-replace to accept" in out
    assert "no deploy order works" in out  # the domain's ARN export changes while the share imports it
    status, out, _ = _run(["plan", str(old), str(new), "--allow-replace", "--json"])
    assert status == ExitStatus.FAILURE  # allowed, but still no order that CloudFormation accepts
    assert json.loads(out)["safe"] is False


def test_plan_of_a_safe_change_exits_0_with_the_order(tmp_path: Path) -> None:
    before, after = _base(), _base()
    after["customers"].pop(1)
    status, out, _ = _run(
        ["plan", str(_write(tmp_path, "a.yaml", before)), str(_write(tmp_path, "b.yaml", after))]
    )
    assert status == ExitStatus.OK
    assert "~ AWS::RAM::ResourceShare ShareMarketData" in out
    assert "customer beta-capital (eu-west-2) loses domain market-data (revoked): for good" in out
    assert (
        f"deploy in this order: venue-md-{REGION}-network, venue-md-{REGION}-sharing, venue-md-{REGION}-compute"
        in out
    )
    # Only the changed stack, alone: without --exclusively the CDK would deploy the network first.
    commands = [line for line in out.splitlines() if "cdk deploy" in line]
    assert commands == [
        f"  npx cdk deploy --exclusively -c config={tmp_path / 'b.yaml'} venue-md-{REGION}-sharing"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "absent.yaml", "absent.yaml"], "absent.yaml: cannot read the file"),
        (
            ["plan", "config/example.yaml", "config/example.yaml", "--customer", "alpha-trading"],
            "--customer and --region go together",
        ),
        (
            [
                "plan",
                "config/example.yaml",
                "config/example.yaml",
                "--customer",
                "nobody",
                "--region",
                REGION,
            ],
            "--customer nobody",
        ),
    ],
)
def test_plan_bad_input_exits_2(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    status, out, err = _run(argv)
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert message in err and "Traceback" not in err
