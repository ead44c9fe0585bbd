"""The doctor's AWS checks against botocore's Stubber (moto has no multicast-domain API): every request
is validated against the EC2 service model, and every response against its output shape."""

from __future__ import annotations

import copy
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cni_support import serving

from mcastkit.doctor.aws.checks import aws_findings
from mcastkit.doctor.aws.imds import InstanceMetadata
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.options import DoctorOptions
from mcastkit.doctor.procfs import ProcFs
from mcastkit.errors import EnvironmentFailure
from mcastkit.net.addresses import GroupPort
from mcastkit.onboard.aws import Aws, AwsFailure

REGION = "eu-west-2"
ACCOUNT = "111111111111"
ENI = "eni-0123456789abcdef0"
MAC = "0e:00:00:00:00:16"
SUBNET = "subnet-0aaaaaaaaaaaaaaa1"
VPC = "vpc-0bbbbbbbbbbbbbbb1"
SG = "sg-0ccccccccccccccc1"
ACL = "acl-0ddddddddddddddd1"
DOMAIN = "tgw-mcast-domain-0eeeeeeeeeeeeeee1"
OTHER_DOMAIN = "tgw-mcast-domain-0fffffffffffffff2"
ATTACHMENT = "tgw-attach-0123456789abcdef0"
GROUP = GroupPort("239.10.1.3", 30003)
SOURCE = IPv4Network("10.20.1.0/24")

IGMP_IN = {"IpProtocol": "2", "IpRanges": [{"CidrIp": "0.0.0.0/32"}]}
UDP_IN = {"IpProtocol": "udp", "FromPort": 30003, "ToPort": 30003, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
IGMP_OUT = {"IpProtocol": "2", "IpRanges": [{"CidrIp": "224.0.0.2/32"}, {"CidrIp": "239.10.1.3/32"}]}
ACL_IN = [
    {"RuleNumber": 100, "Protocol": "2", "RuleAction": "allow", "Egress": False, "CidrBlock": "0.0.0.0/32"},
    {
        "RuleNumber": 110,
        "Protocol": "17",
        "RuleAction": "allow",
        "Egress": False,
        "CidrBlock": "10.20.0.0/16",
        "PortRange": {"From": 30000, "To": 30010},
    },
    {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": False, "CidrBlock": "0.0.0.0/0"},
]
ACL_OUT = [
    {"RuleNumber": 100, "Protocol": "2", "RuleAction": "allow", "Egress": True, "CidrBlock": "224.0.0.2/32"},
    {"RuleNumber": 110, "Protocol": "2", "RuleAction": "allow", "Egress": True, "CidrBlock": "239.10.1.0/24"},
    {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": True, "CidrBlock": "0.0.0.0/0"},
]


def _eni() -> dict[str, Any]:
    return {
        "NetworkInterfaces": [
            {
                "NetworkInterfaceId": ENI,
                "SubnetId": SUBNET,
                "VpcId": VPC,
                "PrivateIpAddress": "10.20.0.17",
                "MacAddress": MAC,
                "Groups": [{"GroupId": SG, "GroupName": "members"}],
            }
        ]
    }


def _domains(
    *ids: str, igmp: str = "enable", static: str = "disable", state: str = "available"
) -> dict[str, Any]:
    return {
        "TransitGatewayMulticastDomains": [
            {
                "TransitGatewayMulticastDomainId": domain_id,
                "TransitGatewayId": "tgw-0123456789abcdef0",
                "OwnerId": "222222222222",
                "Options": {
                    "Igmpv2Support": igmp,
                    "StaticSourcesSupport": static,
                    "AutoAcceptSharedAssociations": "disable",
                },
                "State": state,
            }
            for domain_id in ids
        ]
    }


def _associations(state: str | None) -> dict[str, Any]:
    if state is None:
        return {"MulticastDomainAssociations": []}
    return {
        "MulticastDomainAssociations": [
            {
                "TransitGatewayAttachmentId": ATTACHMENT,
                "ResourceId": VPC,
                "ResourceType": "vpc",
                "ResourceOwnerId": ACCOUNT,
                "Subnet": {"SubnetId": SUBNET, "State": state},
            }
        ]
    }


def _members(*entries: dict[str, Any]) -> dict[str, Any]:
    base = {"GroupIpAddress": GROUP.group, "SubnetId": SUBNET, "ResourceOwnerId": ACCOUNT}
    return {"MulticastGroups": [base | entry for entry in entries]}


ME = {"NetworkInterfaceId": ENI, "GroupMember": True, "GroupSource": False, "MemberType": "igmp"}


def _security_groups(ingress: list[dict[str, Any]], egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "SecurityGroups": [
            {
                "GroupId": SG,
                "GroupName": "members",
                "Description": "multicast members",
                "OwnerId": ACCOUNT,
                "VpcId": VPC,
                "IpPermissions": ingress,
                "IpPermissionsEgress": egress,
            }
        ]
    }


def _acls(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"NetworkAcls": [{"NetworkAclId": ACL, "VpcId": VPC, "IsDefault": False, "Entries": entries}]}


class Ec2:
    """An EC2 client under the Stubber, and the calls of one healthy run, each replaceable."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def expect(self, operation: str, response: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.stubber.add_response(operation, copy.deepcopy(response), params)

    def aws(self, region: str) -> Aws:
        assert region == REGION
        return Aws(region=region, clients={"ec2": self.client})

    def run(
        self,
        *,
        domains: dict[str, Any] | None = None,
        association: str | None = "associated",
        members: dict[str, Any] | None = None,
        ingress: list[dict[str, Any]] | None = None,
        egress: list[dict[str, Any]] | None = None,
        acl: list[dict[str, Any]] | None = None,
        sources: tuple[IPv4Network, ...] = (SOURCE,),
    ) -> list[Finding]:
        """Expect the calls of a run with --eni and --domain, then run the checks."""
        self.expect("describe_network_interfaces", _eni(), {"NetworkInterfaceIds": [ENI]})
        self.expect(
            "describe_transit_gateway_multicast_domains",
            domains or _domains(DOMAIN),
            {"TransitGatewayMulticastDomainIds": [DOMAIN]},
        )
        self.expect(
            "get_transit_gateway_multicast_domain_associations",
            _associations(association),
            {
                "TransitGatewayMulticastDomainId": DOMAIN,
                "Filters": [{"Name": "subnet-id", "Values": [SUBNET]}],
            },
        )
        self.expect(
            "search_transit_gateway_multicast_groups",
            members or _members(ME),
            {
                "TransitGatewayMulticastDomainId": DOMAIN,
                "Filters": [{"Name": "group-ip-address", "Values": [GROUP.group]}],
            },
        )
        self.expect(
            "describe_security_groups",
            _security_groups(ingress if ingress is not None else [IGMP_IN, UDP_IN], egress or [IGMP_OUT]),
            {"GroupIds": [SG]},
        )
        self.expect(
            "describe_network_acls",
            _acls(acl or ACL_IN + ACL_OUT),
            {"Filters": [{"Name": "association.subnet-id", "Values": [SUBNET]}]},
        )
        options = DoctorOptions(
            groups=(GROUP,), sources=sources, aws=True, region=REGION, eni=ENI, domain=DOMAIN
        )
        findings = list(aws_findings(options, ProcFs(Path("/nonexistent")), "eth1", self.aws))
        self.stubber.assert_no_pending_responses()
        return findings


@pytest.fixture
def ec2() -> Ec2:
    return Ec2()


def _problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is not Severity.OK]


def _only(findings: list[Finding], check: str, subject_part: str) -> Finding:
    matching = [f for f in findings if f.check == check and subject_part in f.subject]
    assert len(matching) == 1, [f.line() for f in findings]
    return matching[0]


def test_a_healthy_member_has_only_ok_findings(ec2: Ec2) -> None:
    findings = ec2.run()
    assert _problems(findings) == []
    assert _only(findings, "aws-eni", "eth1 ENI").message.startswith(f"{ENI} (found by --eni): 10.20.0.17")
    assert _only(findings, "aws-association", SUBNET).message == f"associated (attachment {ATTACHMENT})"
    assert _only(findings, "aws-membership", "membership").message.startswith("a member (igmp)")
    sg_subjects = [f.subject for f in findings if f.check == "aws-security-group"]
    assert sg_subjects == [
        f"security group {SG} inbound IGMP from 0.0.0.0/32",
        f"security group {SG} outbound IGMP to 224.0.0.2/32",
        f"security group {SG} outbound IGMP to 239.10.1.3/32",
        f"security group {SG} inbound UDP port 30003 from 10.20.1.0/24",
    ]
    acl = [f for f in findings if f.check == "aws-network-acl"]
    assert (
        len(acl) == 4 and acl[0].message == "IGMPv2 queries from the Transit Gateway are allowed by rule 100"
    )


def test_a_pending_association_names_the_owner_and_the_accept_command(ec2: Ec2) -> None:
    finding = _only(ec2.run(association="pendingAcceptance"), "aws-association", SUBNET)
    assert finding.severity is Severity.PROBLEM
    assert "waits for the domain owner's acceptance" in finding.message
    assert finding.fix.startswith("the domain owner must accept: `mcastkit onboard accept --config CONFIG")
    assert f"--transit-gateway-attachment-id {ATTACHMENT} --subnet-ids {SUBNET}" in finding.fix


def test_a_missing_association_and_a_rejected_one_are_problems(ec2: Ec2) -> None:
    missing = _only(ec2.run(association=None), "aws-association", SUBNET)
    assert missing.severity is Severity.PROBLEM and missing.message.startswith(
        "not associated with the domain"
    )
    rejected = _only(Ec2().run(association="rejected"), "aws-association", SUBNET)
    assert "the association is rejected" in rejected.message and "entitle" in rejected.fix


def test_a_security_group_without_inbound_igmp_is_a_problem_naming_the_group_and_the_rule(ec2: Ec2) -> None:
    findings = ec2.run(ingress=[UDP_IN])
    (problem,) = _problems(findings)
    assert problem.check == "aws-security-group"
    assert problem.subject == f"security group {SG} inbound IGMP from 0.0.0.0/32"
    assert problem.message == "no rule allows IGMPv2 queries from the Transit Gateway"
    assert problem.fix.startswith(
        f"aws ec2 authorize-security-group-ingress --group-id {SG} --protocol 2 --cidr 0.0.0.0/32"
    )


def test_all_traffic_rules_allow_every_flow(ec2: Ec2) -> None:
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    findings = ec2.run(ingress=[everything], egress=[everything])
    assert [f for f in findings if f.check == "aws-security-group" and f.severity is not Severity.OK] == []


def test_udp_from_a_sender_outside_the_rules_names_the_part_not_covered(ec2: Ec2) -> None:
    narrow = {
        "IpProtocol": "udp",
        "FromPort": 30003,
        "ToPort": 30003,
        "IpRanges": [{"CidrIp": "10.20.1.0/25"}],
    }
    findings = ec2.run(ingress=[IGMP_IN, narrow])
    (problem,) = _problems(findings)
    assert problem.message == "no rule allows the datagrams of 239.10.1.3:30003 (not from 10.20.1.128/25)"
    assert "--protocol udp --port 30003 --cidr 10.20.1.0/24" in problem.fix
    assert "regions.<region>.domains[].source_cidrs" in problem.fix


def test_without_sources_any_udp_rule_for_the_port_is_reported_with_its_cidrs(ec2: Ec2) -> None:
    findings = ec2.run(sources=())
    udp = _only(findings, "aws-security-group", "UDP port 30003 from a sender")
    assert udp.severity is Severity.OK and "allowed from 10.20.0.0/16 (pass --source" in udp.message
    acl = _only(findings, "aws-network-acl", "UDP port 30003 from a sender")
    assert acl.severity is Severity.OK and "from 10.20.0.0/16 by rule 110" in acl.message


def test_a_network_acl_deny_before_the_allow_wins(ec2: Ec2) -> None:
    deny = {
        "RuleNumber": 90,
        "Protocol": "2",
        "RuleAction": "deny",
        "Egress": False,
        "CidrBlock": "0.0.0.0/0",
    }
    findings = ec2.run(acl=[deny, *ACL_IN, *ACL_OUT])
    (problem,) = _problems(findings)
    assert problem.subject == f"network ACL {ACL} inbound IGMP from 0.0.0.0/32"
    assert (
        problem.message
        == "IGMPv2 queries from the Transit Gateway: rule 90 denies them before any entry allows them"
    )
    assert problem.fix.startswith(
        f"aws ec2 create-network-acl-entry --network-acl-id {ACL} --ingress --rule-number 89 --protocol 2 "
        "--cidr-block 0.0.0.0/32 --rule-action allow"
    )


def test_a_network_acl_that_denies_part_of_the_senders_names_that_part(ec2: Ec2) -> None:
    deny = {
        "RuleNumber": 105,
        "Protocol": "17",
        "RuleAction": "deny",
        "Egress": False,
        "CidrBlock": "10.20.1.16/28",
        "PortRange": {"From": 30003, "To": 30003},
    }
    (problem,) = _problems(ec2.run(acl=[*ACL_IN, deny, *ACL_OUT]))
    assert problem.message == (
        "the datagrams of 239.10.1.3:30003: rule 105 denies them before any entry allows them "
        "(from 10.20.1.16/28)"
    )
    assert (
        "--rule-number 104 --protocol 17 --port-range From=30003,To=30003 --cidr-block 10.20.1.0/24"
        in problem.fix
    )


def test_outbound_joins_without_an_entry_meet_the_last_rule(ec2: Ec2) -> None:
    (problem,) = _problems(ec2.run(acl=[*ACL_IN, ACL_OUT[0], ACL_OUT[2]]))
    assert problem.subject == f"network ACL {ACL} outbound IGMP to 239.10.1.3/32"
    assert "no entry allows them (the last rule, *, denies); ACLs are stateless" in problem.message
    assert "--egress --rule-number 110 --protocol 2 --cidr-block 239.10.1.3/32" in problem.fix


def test_a_domain_with_neither_igmp_nor_static_sources_is_a_problem(ec2: Ec2) -> None:
    findings = ec2.run(domains=_domains(DOMAIN, igmp="disable", static="disable"))
    domain = [f for f in findings if f.check == "aws-domain"]
    assert [f.severity for f in domain] == [Severity.PROBLEM]
    assert domain[0].message.startswith("neither IGMPv2 nor static sources (Igmpv2Support disable")
    assert "regions.<region>.domains[].mode" in domain[0].fix


def test_a_static_domain_needs_registered_members_and_sources(ec2: Ec2) -> None:
    findings = ec2.run(
        domains=_domains(DOMAIN, igmp="disable", static="enable"), members={"MulticastGroups": []}
    )
    member = _only(findings, "aws-membership", "membership")
    assert member.severity is Severity.PROBLEM and "this static domain ignores IGMP joins" in member.message
    assert member.fix.startswith(
        "aws ec2 register-transit-gateway-multicast-group-members --transit-gateway-multicast-domain-id "
        f"{DOMAIN} --group-ip-address 239.10.1.3 --network-interface-ids {ENI}"
    )
    sources = _only(findings, "aws-membership", "sources")
    assert (
        sources.severity is Severity.PROBLEM
        and "register-transit-gateway-multicast-group-sources" in sources.fix
    )


def test_an_igmp_member_not_heard_is_a_problem_pointing_at_the_host(ec2: Ec2) -> None:
    other = {"NetworkInterfaceId": "eni-0999999999999999a", "GroupMember": True, "MemberType": "igmp"}
    member = _only(ec2.run(members=_members(other)), "aws-membership", "membership")
    assert member.severity is Severity.PROBLEM
    assert member.message.startswith(f"the Transit Gateway lists no membership of {ENI} (1 other member(s))")
    assert "join 239.10.1.3 on eth1 with IGMPv2" in member.fix


def _find(
    options: DoctorOptions, ec2: Ec2, proc: ProcFs, metadata: Callable[[], InstanceMetadata]
) -> list[Finding]:
    findings = list(aws_findings(options, proc, "eth1", ec2.aws, metadata))
    ec2.stubber.assert_no_pending_responses()
    return findings


def _rest_of_a_run_without_groups(ec2: Ec2) -> None:
    ec2.expect("describe_security_groups", _security_groups([IGMP_IN], [IGMP_OUT]), {"GroupIds": [SG]})
    ec2.expect("describe_network_acls", _acls(ACL_IN + ACL_OUT))


def test_the_domain_is_found_by_the_subnet_association(ec2: Ec2) -> None:
    ec2.expect("describe_network_interfaces", _eni(), {"NetworkInterfaceIds": [ENI]})
    ec2.expect("describe_transit_gateway_multicast_domains", _domains(OTHER_DOMAIN, DOMAIN), {})
    for domain, state in ((OTHER_DOMAIN, None), (DOMAIN, "associated")):
        ec2.expect(
            "get_transit_gateway_multicast_domain_associations",
            _associations(state),
            {
                "TransitGatewayMulticastDomainId": domain,
                "Filters": [{"Name": "subnet-id", "Values": [SUBNET]}],
            },
        )
    _rest_of_a_run_without_groups(ec2)
    options = DoctorOptions(aws=True, region=REGION, eni=ENI)
    findings = _find(options, ec2, ProcFs(Path("/nonexistent")), InstanceMetadata)
    assert _only(findings, "aws-domain", "domain").subject == f"domain {DOMAIN}"
    assert _only(findings, "aws-association", SUBNET).severity is Severity.OK


def test_a_subnet_in_no_domain_is_a_problem(ec2: Ec2) -> None:
    ec2.expect("describe_network_interfaces", _eni())
    ec2.expect("describe_transit_gateway_multicast_domains", _domains(DOMAIN))
    ec2.expect("get_transit_gateway_multicast_domain_associations", _associations(None))
    _rest_of_a_run_without_groups(ec2)
    findings = _find(
        DoctorOptions(aws=True, region=REGION, eni=ENI), ec2, ProcFs(Path("/x")), InstanceMetadata
    )
    problem = _only(findings, "aws-association", SUBNET)
    assert problem.severity is Severity.PROBLEM
    assert problem.message.startswith(f"no multicast domain this account can see in {REGION} has the subnet")


def _tree_with_mac(tmp_path: Path) -> ProcFs:
    path = tmp_path / "sys/class/net/eth1/address"
    path.parent.mkdir(parents=True)
    path.write_text(MAC.upper() + "\n")
    return ProcFs(tmp_path)


def test_the_eni_is_found_by_its_mac_in_the_instance_metadata(
    ec2: Ec2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ec2.expect("describe_network_interfaces", _eni(), {"NetworkInterfaceIds": [ENI]})
    ec2.expect("describe_transit_gateway_multicast_domains", _domains(DOMAIN))
    ec2.expect("get_transit_gateway_multicast_domain_associations", _associations("associated"))
    _rest_of_a_run_without_groups(ec2)
    with serving({MAC: {"interface-id": ENI}}) as endpoint:
        monkeypatch.setenv("MCASTKIT_IMDS_ENDPOINT", endpoint)
        findings = _find(
            DoctorOptions(aws=True, region=REGION), ec2, _tree_with_mac(tmp_path), InstanceMetadata
        )
    assert _only(findings, "aws-eni", "eth1").message.startswith(
        f"{ENI} (found by instance metadata, MAC {MAC})"
    )


def test_without_instance_metadata_the_mac_is_looked_up_in_ec2(ec2: Ec2, tmp_path: Path) -> None:
    ec2.expect("describe_network_interfaces", _eni(), {"Filters": [{"Name": "mac-address", "Values": [MAC]}]})
    ec2.expect("describe_network_interfaces", _eni(), {"NetworkInterfaceIds": [ENI]})
    ec2.expect("describe_transit_gateway_multicast_domains", _domains(DOMAIN))
    ec2.expect("get_transit_gateway_multicast_domain_associations", _associations("associated"))
    _rest_of_a_run_without_groups(ec2)

    def unreachable() -> InstanceMetadata:
        return InstanceMetadata(endpoint="http://127.0.0.1:9", timeout=0.5)  # discard port: refused

    findings = _find(DoctorOptions(aws=True, region=REGION), ec2, _tree_with_mac(tmp_path), unreachable)
    found = _only(findings, "aws-eni", "eth1").message
    assert found.startswith(f"{ENI} (found by ec2:DescribeNetworkInterfaces by MAC {MAC} (instance metadata:")


def test_access_denied_is_one_line_naming_the_call(ec2: Ec2) -> None:
    ec2.stubber.add_client_error(
        "describe_network_interfaces",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    options = DoctorOptions(aws=True, region=REGION, eni=ENI)
    with pytest.raises(AwsFailure) as failed:
        list(aws_findings(options, ProcFs(Path("/x")), "eth1", ec2.aws))
    assert failed.value.render() == (
        f"account unknown, region {REGION}, {ENI}: access denied to ec2:DescribeNetworkInterfaces "
        "(UnauthorizedOperation: You are not authorized to perform this operation.)"
    )


def test_no_region_anywhere_is_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(EnvironmentFailure, match="--aws: no AWS region: pass --region, or set AWS_REGION"):
        list(aws_findings(DoctorOptions(aws=True), ProcFs(tmp_path), "eth1", Ec2().aws))
