"""bootstrap/eks-multicast-eni.sh for real, in a network namespace, against a fake EC2 instance
(moto's EC2 and an IMDSv2 that reads it, tests/fake_ec2_node.py): the node creates its multicast ENI
in the multicast subnet with the no_manage tag, attaches it at device index 1, names it mcast0,
strips the address networkd gave it and writes the files that keep networkd off it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from netns_support import needs_netns, new_namespace

from mcastkit.constructs.cluster import BOOTSTRAP_DIR
from mcastkit.eks.network import NODE_DEVICE, NODE_LABEL, NODE_LABEL_VALUE

SCRIPT = BOOTSTRAP_DIR / "eks-multicast-eni.sh"
AWS_CLI = Path(sys.executable).with_name("aws")
FAKE_NODE = Path(__file__).with_name("fake_ec2_node.py")

needs_aws_cli = pytest.mark.skipif(
    not AWS_CLI.exists() or shutil.which("curl") is None,
    reason="needs the AWS CLI next to this Python (requirements-dev: awscli) and curl",
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class FakeNode:
    namespace: str
    process: subprocess.Popen[str]
    ids: dict[str, str]
    env: dict[str, str]

    def enis(self) -> list[dict[str, Any]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("describe\n")
        self.process.stdin.flush()
        return list(json.loads(self.process.stdout.readline()))

    def boot(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        env = self.env | overrides
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, "env", *(f"{k}={v}" for k, v in env.items()),
             "bash", str(SCRIPT)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def links(self) -> dict[str, dict[str, Any]]:
        shown = subprocess.run(
            ["ip", "-j", "-n", self.namespace, "address", "show"], capture_output=True, text=True, check=True
        )
        return {link["ifname"]: link for link in json.loads(shown.stdout)}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[FakeNode]:
    imds_port, ec2_port = _free_ports(2)
    nodeadm = tmp_path / "eks"
    (nodeadm / "nodeadm").mkdir(parents=True)  # as on the EKS AMI
    with new_namespace("eksnode") as namespace:
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, str(FAKE_NODE), str(imds_port), str(ec2_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            ids = json.loads(process.stdout.readline())
            assert process.stdout.readline().strip() == "ready"
            env = {
                "PATH": f"{AWS_CLI.parent}:{os.environ['PATH']}",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ec2_port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "MCASTKIT_IMDS_ENDPOINT": f"http://127.0.0.1:{imds_port}",
                "MCASTKIT_NETWORKD_DIR": str(tmp_path / "network"),
                "MCASTKIT_NODEADM_DIR": str(nodeadm),
                "MCASTKIT_ENI_SUBNET": ids["subnet"],
                "MCASTKIT_ENI_SECURITY_GROUP": ids["security_group"],
                "MCASTKIT_CLUSTER": "venue-md-eu-west-2",
                "MCASTKIT_NODE_LABEL": f"{NODE_LABEL}={NODE_LABEL_VALUE}",
                "MCASTKIT_WAIT_SECONDS": "20",
            }
            yield FakeNode(namespace, process, ids, env)
        finally:
            if process.stdin:
                process.stdin.close()
            process.wait(20)


def _tags(eni: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in eni.get("TagSet", [])}


@pytest.mark.netns
@needs_netns
@needs_aws_cli
def test_boot_attaches_names_and_unmanages_the_multicast_eni(node: FakeNode, tmp_path: Path) -> None:
    result = node.boot()
    assert result.returncode == 0, result.stderr
    [eni] = [e for e in node.enis() if e["Attachment"]["DeviceIndex"] == 1]
    assert eni["SubnetId"] == node.ids["subnet"]
    assert [g["GroupId"] for g in eni["Groups"]] == [node.ids["security_group"]]
    assert eni["Attachment"]["InstanceId"] == node.ids["instance"]
    # Tagged at creation: the VPC CNI never sees the ENI without no_manage.
    assert _tags(eni) == {
        "node.k8s.amazonaws.com/no_manage": "true",
        "mcastkit:cluster": "venue-md-eu-west-2",
        "mcastkit:instance": node.ids["instance"],
    }
    assert f"created {eni['NetworkInterfaceId']} in {node.ids['subnet']}" in result.stdout

    link = node.links()[NODE_DEVICE]
    assert link["address"] == eni["MacAddress"]
    assert "UP" in link["flags"]
    assert [a for a in link["addr_info"] if a["family"] == "inet"] == [], (
        "the address is the pod's, not the node's"
    )
    network = (tmp_path / "network" / "05-mcastkit-multicast-eni.network").read_text()
    assert f"MACAddress={eni['MacAddress']}" in network and "Unmanaged=yes" in network
    link_file = (tmp_path / "network" / "05-mcastkit-multicast-eni.link").read_text()
    assert f"MACAddress={eni['MacAddress']}" in link_file and f"Name={NODE_DEVICE}" in link_file
    # nodeadm's cache of interface managers: the ENI is the CNI's, so its udev rule configures
    # nothing and its boot hook expects the link unmanaged at the next boot.
    cache = tmp_path / "eks" / "nodeadm" / "udev-net-manager" / node.ids["instance"] / NODE_DEVICE
    assert cache.read_text().strip() == "cni"
    # Only now does the node get the multicast label (nodeadm-run merges the drop-in).
    dropin = (tmp_path / "eks" / "nodeadm.d" / "50-mcastkit-multicast-eni.yaml").read_text()
    assert yaml.safe_load(dropin) == {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {"kubelet": {"flags": [f"--node-labels={NODE_LABEL}={NODE_LABEL_VALUE}"]}},
    }

    # A reboot runs the script again (a user data re-run, or by hand): nothing new is created.
    again = node.boot()
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout
    assert len([e for e in node.enis() if e["Attachment"]["DeviceIndex"] == 1]) == 1


@pytest.mark.netns
@needs_netns
@needs_aws_cli
def test_boot_failures_are_one_line_each(node: FakeNode, tmp_path: Path) -> None:
    refused = node.boot(MCASTKIT_ENI_SUBNET="subnet-0000000000000dead")
    assert refused.returncode == 1
    assert "could not create the multicast ENI in subnet-0000000000000dead" in refused.stderr
    assert not [e for e in node.enis() if e["Attachment"]["DeviceIndex"] == 1]
    # No ENI, no label: no multicast pod is placed on this node.
    assert not (tmp_path / "eks" / "nodeadm.d").exists()

    unset = node.boot(MCASTKIT_ENI_SUBNET="")
    assert unset.returncode == 1
    assert "MCASTKIT_ENI_SUBNET: the multicast subnet to create the ENI in" in unset.stderr

    no_metadata = node.boot(MCASTKIT_IMDS_ENDPOINT="http://127.0.0.1:9")
    assert no_metadata.returncode == 1
    assert "no instance id in the instance metadata at http://127.0.0.1:9" in no_metadata.stderr
