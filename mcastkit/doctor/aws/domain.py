"""The multicast domain the ENI's subnet belongs to: its state and options, and the subnet's
association with it.

A subnet belongs to one domain at most, so without ``--domain`` the doctor looks through every
domain this account can see (its own and those shared with it) for an association of the subnet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcastkit.doctor.aws.interface import Eni
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.onboard.aws import Aws

CHECK_DOMAIN = "aws-domain"
CHECK_ASSOCIATION = "aws-association"
_GONE = {"deleting", "deleted"}


@dataclass(frozen=True)
class DomainOfSubnet:
    #: The domain as DescribeTransitGatewayMulticastDomains gives it; ``None``: none found.
    domain: dict[str, Any] | None
    #: The subnet's association in it; ``None``: not associated.
    association: dict[str, Any] | None

    @property
    def domain_id(self) -> str:
        return str((self.domain or {}).get("TransitGatewayMulticastDomainId", "?"))

    def option(self, name: str) -> bool:
        return bool((self.domain or {}).get("Options", {}).get(name) == "enable")

    @property
    def igmpv2(self) -> bool:
        return self.option("Igmpv2Support")

    @property
    def static_sources(self) -> bool:
        return self.option("StaticSourcesSupport")


def find_domain(aws: Aws, domain_id: str | None, subnet_id: str) -> DomainOfSubnet:
    if domain_id is not None:
        domains = aws.pages(
            "multicast",
            "describe_transit_gateway_multicast_domains",
            "TransitGatewayMulticastDomains",
            domain_id,
            TransitGatewayMulticastDomainIds=[domain_id],
        )
    else:
        domains = aws.pages(
            "multicast",
            "describe_transit_gateway_multicast_domains",
            "TransitGatewayMulticastDomains",
            "multicast domains",
        )
    for domain in domains:
        if domain_id is None and domain.get("State") in _GONE:
            continue
        found = domain["TransitGatewayMulticastDomainId"]
        associations = aws.pages(
            "multicast",
            "get_transit_gateway_multicast_domain_associations",
            "MulticastDomainAssociations",
            found,
            TransitGatewayMulticastDomainId=found,
            Filters=[{"Name": "subnet-id", "Values": [subnet_id]}],
        )
        mine = [a for a in associations if a.get("Subnet", {}).get("SubnetId") == subnet_id]
        if mine:
            return DomainOfSubnet(domain, mine[0])
    return DomainOfSubnet(domains[0] if domain_id is not None and domains else None, None)


def domain_findings(
    found: DomainOfSubnet, eni: Eni, *, asked: str | None, region: str, groups_given: bool
) -> list[Finding]:
    if found.domain is None:
        return [_no_domain(eni, asked, region)]
    domain_id = found.domain_id
    subject = f"domain {domain_id}"
    findings: list[Finding] = []
    state = found.domain.get("State")
    if state != "available":
        findings.append(
            Finding(
                Severity.PROBLEM,
                CHECK_DOMAIN,
                subject,
                f"the domain is {state}, not available",
                "wait for 'pending' to end; a deleted domain must be created again (with its associations)",
            )
        )
    findings.append(_mode(found, subject, groups_given))
    findings.append(_association(found, eni))
    return findings


def _no_domain(eni: Eni, asked: str | None, region: str) -> Finding:
    if asked is not None:
        return Finding(
            Severity.PROBLEM,
            CHECK_DOMAIN,
            f"domain {asked}",
            f"this account cannot see it in {region}: it is not shared with this account (AWS RAM), or it "
            "is in another region",
            "accept the provider's share (mcastkit onboard join --share-arn ARN), or pass --region",
        )
    return Finding(
        Severity.PROBLEM,
        CHECK_ASSOCIATION,
        f"subnet {eni.subnet_id} of {eni.eni_id}",
        f"no multicast domain this account can see in {region} has the subnet associated, so the Transit "
        "Gateway delivers nothing to it",
        "associate the subnet with the domain (the customer stack of `mcastkit onboard kit` does it; or "
        "aws ec2 associate-transit-gateway-multicast-domain --transit-gateway-multicast-domain-id DOMAIN "
        f"--transit-gateway-attachment-id ATTACHMENT --subnet-ids {eni.subnet_id}); pass --domain to look in "
        "one domain",
    )


def _mode(found: DomainOfSubnet, subject: str, groups_given: bool) -> Finding:
    options = found.domain.get("Options", {}) if found.domain else {}
    settings = (
        f"Igmpv2Support {options.get('Igmpv2Support', '?')}, "
        f"StaticSourcesSupport {options.get('StaticSourcesSupport', '?')}"
    )
    if not found.igmpv2 and not found.static_sources:
        return Finding(
            Severity.PROBLEM,
            CHECK_DOMAIN,
            subject,
            f"neither IGMPv2 nor static sources ({settings}): no member can join by IGMP and no source is "
            "registered to send",
            "create the domain again with Igmpv2Support enable (or StaticSourcesSupport enable): a domain's "
            "options cannot be changed (mcastkit config: regions.<region>.domains[].mode igmpv2 or static)",
        )
    if found.igmpv2:
        return Finding(Severity.OK, CHECK_DOMAIN, subject, f"IGMPv2 domain ({settings})")
    # Static sources: the Transit Gateway ignores IGMP; members are registered by ENI id.
    return Finding(
        Severity.OK if groups_given else Severity.WARN,
        CHECK_DOMAIN,
        subject,
        f"static domain ({settings}): IGMP joins are ignored; a member receives only once its ENI is "
        "registered for the group"
        + ("" if groups_given else " (pass --group to check this ENI's registrations)"),
        "" if groups_given else "mcastkit doctor --aws --group GROUP:PORT",
    )


def _association(found: DomainOfSubnet, eni: Eni) -> Finding:
    domain_id = found.domain_id
    subject = f"subnet {eni.subnet_id} in {domain_id}"
    association = found.association
    if association is None:
        return Finding(
            Severity.PROBLEM,
            CHECK_ASSOCIATION,
            subject,
            f"not associated with the domain, so the Transit Gateway delivers nothing to {eni.eni_id}",
            "associate it (the customer stack of `mcastkit onboard kit` does; or aws ec2 "
            f"associate-transit-gateway-multicast-domain --transit-gateway-multicast-domain-id {domain_id} "
            f"--transit-gateway-attachment-id ATTACHMENT --subnet-ids {eni.subnet_id})",
        )
    state = association.get("Subnet", {}).get("State")
    attachment = association.get("TransitGatewayAttachmentId", "ATTACHMENT")
    ids = (
        f"--transit-gateway-multicast-domain-id {domain_id} --transit-gateway-attachment-id {attachment} "
        f"--subnet-ids {eni.subnet_id}"
    )
    if state == "associated":
        return Finding(Severity.OK, CHECK_ASSOCIATION, subject, f"associated (attachment {attachment})")
    if state == "pendingAcceptance":
        return Finding(
            Severity.PROBLEM,
            CHECK_ASSOCIATION,
            subject,
            "the association waits for the domain owner's acceptance; until then nothing is delivered",
            "the domain owner must accept: `mcastkit onboard accept --config CONFIG --region REGION` in the "
            f"provider account (or aws ec2 accept-transit-gateway-multicast-domain-associations {ids})",
        )
    if state == "associating":
        return Finding(
            Severity.WARN,
            CHECK_ASSOCIATION,
            subject,
            "still associating: nothing is delivered until it is associated",
            "wait a minute and run the doctor again",
        )
    return Finding(
        Severity.PROBLEM,
        CHECK_ASSOCIATION,
        subject,
        f"the association is {state}, so the Transit Gateway delivers nothing to the subnet"
        + (" (the domain owner rejected it: is this account entitled?)" if state == "rejected" else ""),
        f"associate the subnet again (aws ec2 associate-transit-gateway-multicast-domain {ids}); a rejected "
        "one needs the provider to entitle this account first",
    )
