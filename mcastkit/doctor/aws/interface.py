"""The ENI behind the multicast interface: ``--eni``, else its MAC through the instance metadata,
else its MAC through ``DescribeNetworkInterfaces`` (a pod or a host without metadata access).

Inferred, not documented: that a MAC address names one ENI within a region. The doctor refuses
to guess when the EC2 API returns more than one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcastkit.doctor.aws.imds import InstanceMetadata, MetadataUnavailable
from mcastkit.doctor.procfs import ProcFs
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws, AwsFailure


@dataclass(frozen=True)
class Eni:
    eni_id: str
    subnet_id: str
    vpc_id: str
    address: str
    security_groups: tuple[str, ...]
    #: How the ENI was found, for the report.
    found_by: str


def find_eni(
    aws: Aws,
    proc: ProcFs,
    interface: str,
    eni_id: str | None,
    metadata: Callable[[], InstanceMetadata] = InstanceMetadata,
) -> Eni:
    found_by = "--eni"
    if eni_id is None:
        eni_id, found_by = _by_mac(aws, proc, interface, metadata())
    items = aws.pages(
        "ec2", "describe_network_interfaces", "NetworkInterfaces", eni_id, NetworkInterfaceIds=[eni_id]
    )
    if not items:
        raise AwsFailure(
            f"account {aws.account or 'unknown'}, region {aws.region}, {eni_id}: not found by "
            "ec2:DescribeNetworkInterfaces",
            ExitStatus.FAILURE,
        )
    return _eni(items[0], found_by)


def _eni(item: dict[str, Any], found_by: str) -> Eni:
    return Eni(
        eni_id=str(item["NetworkInterfaceId"]),
        subnet_id=str(item.get("SubnetId", "")),
        vpc_id=str(item.get("VpcId", "")),
        address=str(item.get("PrivateIpAddress", "")),
        security_groups=tuple(str(g["GroupId"]) for g in item.get("Groups", [])),
        found_by=found_by,
    )


def _by_mac(aws: Aws, proc: ProcFs, interface: str, metadata: InstanceMetadata) -> tuple[str, str]:
    mac = proc.mac(interface)
    if mac is None:
        raise BadInput(
            f"--aws: cannot read {interface}'s MAC address (/sys/class/net/{interface}/address) to find "
            "its ENI; pass --eni eni-..."
        )
    try:
        eni_id = metadata.eni_of(mac)
    except MetadataUnavailable as err:
        why = f"instance metadata: {err}"
    else:
        if eni_id is not None:
            return eni_id, f"instance metadata, MAC {mac}"
        why = f"instance metadata: no ENI of this instance has MAC {mac}"
    items = aws.pages(
        "ec2",
        "describe_network_interfaces",
        "NetworkInterfaces",
        f"MAC {mac}",
        Filters=[{"Name": "mac-address", "Values": [mac]}],
    )
    if len(items) == 1:
        return str(items[0]["NetworkInterfaceId"]), f"ec2:DescribeNetworkInterfaces by MAC {mac} ({why})"
    if not items:
        raise EnvironmentFailure(
            f"--aws: no ENI in region {aws.region} has {interface}'s MAC {mac} ({why}); pass --eni eni-..., "
            "or --region if the ENI is in another region"
        )
    ids = ", ".join(str(i["NetworkInterfaceId"]) for i in items)
    raise BadInput(f"--aws: several ENIs have MAC {mac} ({ids}); pass --eni with the one of {interface}")
