"""The example's EKS stack (London), as synthesized: the cluster, the nodes' launch templates and
groups, the node's user data, IAM, the VPC CNI add-on, and what the network stack adds for it."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcastkit.config import Config
from mcastkit.config.names import pascal
from mcastkit.constructs.cluster import BOOTSTRAP_DIR
from mcastkit.constructs.eks_cluster import CLUSTER_ADMIN_POLICY, CONTROL_PLANE_LOGS
from mcastkit.constructs.eks_nodes import EKS_BOOTSTRAP_SCRIPTS, NODE_POLICIES, USER_DATA_LIMIT
from mcastkit.eks.network import IPAM_PLUGIN, NODE_LABEL, NODE_LABEL_VALUE, ami_parameter

REGION = "eu-west-2"
CLUSTER = "venue-md-eu-west-2"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def templates(example_app: Any) -> dict[str, dict[str, Any]]:
    stacks = example_app.stacks[REGION]
    return {
        kind: example_app.assembly.get_stack_by_name(getattr(stacks, kind).stack_name).template
        for kind in ("network", "eks")
    }


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def _one(template: dict[str, Any], type_: str) -> dict[str, Any]:
    [resource] = _of_type(template, type_).values()
    return resource


def _text(value: Any) -> str:
    """A template string with its intrinsic parts shown as <Ref>/<GetAtt ...>/<Import>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_text(part) for part in value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return f"<GetAtt {'.'.join(value['Fn::GetAtt'])}>"
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    if "Fn::ImportValue" in value or "Fn::GetStackOutput" in value:
        return "<Import>"
    if "Fn::Base64" in value:  # a MIME part in base64 transfer encoding: shown decoded
        return _text(value["Fn::Base64"])
    raise AssertionError(f"unexpected intrinsic {value}")


def test_the_cluster_is_private_encrypted_logged_and_reached_by_access_entries(
    templates: dict[str, dict[str, Any]], example_config: Config
) -> None:
    eks = example_config.regions[REGION].eks
    assert eks is not None
    cluster = _one(templates["eks"], "AWS::EKS::Cluster")["Properties"]
    assert cluster["Name"] == CLUSTER
    assert cluster["Version"] == eks.kubernetes_version
    vpc = cluster["ResourcesVpcConfig"]
    assert vpc["EndpointPrivateAccess"] is True and vpc["EndpointPublicAccess"] is False
    assert "PublicAccessCidrs" not in vpc
    # The control plane's interfaces in the two node subnets (network stack imports).
    assert len(vpc["SubnetIds"]) == 2
    assert cluster["AccessConfig"] == {
        "AuthenticationMode": "API",
        "BootstrapClusterCreatorAdminPermissions": False,
    }
    assert cluster["KubernetesNetworkConfig"] == {"IpFamily": "ipv4", "ServiceIpv4Cidr": "10.100.0.0/16"}
    [encryption] = cluster["EncryptionConfig"]
    assert encryption["Resources"] == ["secrets"]
    assert "Fn::GetAtt" in encryption["Provider"]["KeyArn"]
    assert [t["Type"] for t in cluster["Logging"]["ClusterLogging"]["EnabledTypes"]] == list(
        CONTROL_PLANE_LOGS
    )
    assert cluster["BootstrapSelfManagedAddons"] is True

    [log_group] = _of_type(templates["eks"], "AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["LogGroupName"] == f"/aws/eks/{CLUSTER}/cluster"
    assert "KmsKeyId" in log_group["Properties"]
    assert log_group["DeletionPolicy"] == "Retain"

    [api] = _of_type(templates["eks"], "AWS::EC2::SecurityGroup").values()
    assert [(r["CidrIp"], r["FromPort"], r["ToPort"]) for r in api["Properties"]["SecurityGroupIngress"]] == [
        ("10.20.0.0/16", 443, 443)
    ]

    entries = [e["Properties"] for e in _of_type(templates["eks"], "AWS::EKS::AccessEntry").values()]
    admins = [e for e in entries if e["Type"] == "STANDARD"]
    assert [a["PrincipalArn"] for a in admins] == eks.admin_roles
    assert admins[0]["AccessPolicies"] == [
        {"PolicyArn": CLUSTER_ADMIN_POLICY, "AccessScope": {"Type": "cluster"}}
    ]
    [node_entry] = [e for e in entries if e["Type"] == "EC2_LINUX"]
    assert "Fn::GetAtt" in node_entry["PrincipalArn"]


def test_the_vpc_cni_keeps_no_spare_eni_and_counts_the_multicast_one_itself(
    templates: dict[str, dict[str, Any]],
) -> None:
    addon = _one(templates["eks"], "AWS::EKS::Addon")["Properties"]
    assert addon["AddonName"] == "vpc-cni"
    assert addon["ResolveConflicts"] == "OVERWRITE"
    # MAX_ENI stays unset: ipamd already subtracts unmanaged ENIs from the instance's limit.
    assert json.loads(addon["ConfigurationValues"]) == {"env": {"WARM_ENI_TARGET": "0"}}


def test_a_group_per_zone_of_the_pods_domain_in_its_node_subnet(
    templates: dict[str, dict[str, Any]], example_config: Config
) -> None:
    eks = example_config.regions[REGION].eks
    assert eks is not None
    groups = _of_type(templates["eks"], "AWS::AutoScaling::AutoScalingGroup")
    addon = next(iter(_of_type(templates["eks"], "AWS::EKS::Addon")))
    assert sorted(groups) == [k for k in sorted(groups) if re.match(r"NodesGroupEuWest2[ab]", k)]
    assert len(groups) == 2  # market-data has subnets in 2a and 2b, and so do the node subnets
    for group in groups.values():
        props = group["Properties"]
        assert (props["MinSize"], props["DesiredCapacity"], props["MaxSize"]) == ("2", "2", "3")
        assert len(props["VPCZoneIdentifier"]) == 1
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert (rolling["MaxBatchSize"], rolling["MinInstancesInService"]) == (1, 2)
        assert rolling["PauseTime"] == "PT5M" and "ReplaceUnhealthy" in rolling["SuspendProcesses"]
        # The add-on's configuration and the nodes' access entry exist before any node boots.
        assert addon in group["DependsOn"]
        assert any(d.startswith("NodesAccessEntry") for d in group["DependsOn"])
        tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in props["Tags"]}
        assert tags[f"kubernetes.io/cluster/{CLUSTER}"] == ("owned", True)
    # One zone after the other on a rolling update.
    first, second = sorted(groups)
    assert first in groups[second]["DependsOn"]


def _launch_templates(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]["LaunchTemplateData"]
        for k, r in _of_type(template, "AWS::EC2::LaunchTemplate").items()
    }


def test_launch_templates_imdsv2_encrypted_eks_ami(templates: dict[str, dict[str, Any]]) -> None:
    parameters = templates["eks"]["Parameters"]
    for data in _launch_templates(templates["eks"]).values():
        assert data["MetadataOptions"] == {
            "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": 1,
            "HttpTokens": "required",
        }
        [volume] = data["BlockDeviceMappings"]
        assert volume["Ebs"]["Encrypted"] is True
        assert data["InstanceType"] == "c6in.xlarge"
        assert parameters[data["ImageId"]["Ref"]]["Default"] == ami_parameter("1.35", "x86_64")
        assert data["SecurityGroupIds"] == [
            {
                "Fn::GetAtt": [
                    next(iter(_of_type(templates["eks"], "AWS::EKS::Cluster"))),
                    "ClusterSecurityGroupId",
                ]
            }
        ]
        # No interface of the template's own: EC2 Auto Scaling would put it in the node subnet.
        assert "NetworkInterfaces" not in data


def _user_data(data: dict[str, Any]) -> str:
    return _text(data["UserData"]["Fn::Base64"])


def test_user_data_joins_the_cluster_and_sets_up_the_multicast_eni(
    templates: dict[str, dict[str, Any]], example_config: Config
) -> None:
    eks = example_config.regions[REGION].eks
    assert eks is not None and eks.pods_per_node == 44  # c6in.xlarge: (4 - 1) x (15 - 1) + 2
    subnets = set()
    for data in _launch_templates(templates["eks"]).values():
        text = _user_data(data)
        assert "Content-Type: application/node.eks.aws" in text
        assert f"name: {CLUSTER}" in text
        assert "apiServerEndpoint: <GetAtt Cluster3DA9CCBA.Endpoint>" in text
        assert "certificateAuthority: <GetAtt Cluster3DA9CCBA.CertificateAuthorityData>" in text
        assert "cidr: 10.100.0.0/16" in text
        assert "maxPods: 44" in text
        # The label comes from the boot script's nodeadm drop-in, once the node holds its ENI; the
        # multicast pods and Multus select exactly it.
        node_config = text[text.index("kind: NodeConfig") : text.index("Content-Type: text/x-shellscript")]
        assert "node-labels" not in node_config
        assert f"export MCASTKIT_NODE_LABEL={NODE_LABEL}={NODE_LABEL_VALUE}" in text
        assert 'Content-Type: text/x-shellscript; charset="utf-8"' in text
        order = [text.index(f"bash /opt/mcastkit/bootstrap/{name}") for name in EKS_BOOTSTRAP_SCRIPTS]
        assert order == sorted(order)
        assert f"export MCASTKIT_CLUSTER={CLUSTER}" in text
        match = re.search(r"export MCASTKIT_ENI_SUBNET=(\S+)", text)
        assert match and match[1] == "<Import>"  # the zone's multicast subnet, from the network stack
        subnets.add(json.dumps(data["UserData"], sort_keys=True))
        # The scripts and the IPAM plugin, byte for byte (gzip in base64: user data is small).
        files = {
            target: gzip.decompress(base64.b64decode(encoded))
            for target, encoded in re.findall(
                r"<<'MCASTKIT_PACKED_END' \| gunzip > (\S+)\.new\n(\S+)\nMCASTKIT_PACKED_END", text
            )
        }
        assert files == {
            f"/opt/mcastkit/bootstrap/{name}": (BOOTSTRAP_DIR / name).read_bytes()
            for name in EKS_BOOTSTRAP_SCRIPTS
        } | {"/opt/cni/bin/mcastkit-eni-ipam": IPAM_PLUGIN.read_bytes()}
        # EC2 takes 16 KB of user data before base64; tokens resolve to under 2 KB (the CA).
        assert len(text.encode()) + 2048 < USER_DATA_LIMIT
    assert len(subnets) == 2, "each zone's template names its own multicast subnet"


def test_the_pods_and_multus_select_the_label_the_nodes_get(example_app: Any) -> None:
    manifests = example_app.stacks[REGION].eks.manifests
    selectors = [
        obj["spec"]["template"]["spec"]["nodeSelector"]
        for objects in manifests.values()
        for obj in objects
        if obj["kind"] in ("DaemonSet", "Deployment")
    ]
    assert len(selectors) == 3  # Multus, the receivers, the sender
    assert all(selector == {NODE_LABEL: NODE_LABEL_VALUE} for selector in selectors)


def test_node_role_and_no_kubectl_handler(templates: dict[str, dict[str, Any]]) -> None:
    roles = _of_type(templates["eks"], "AWS::IAM::Role")
    [node_role] = [r for k, r in roles.items() if k.startswith("NodesRole")]
    assert node_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    policies = [_text(arn).rsplit("/", 1)[-1] for arn in node_role["Properties"]["ManagedPolicyArns"]]
    assert policies == list(NODE_POLICIES)
    inline = [
        p for p in _of_type(templates["eks"], "AWS::IAM::Policy").values() if "NodesRole" in json.dumps(p)
    ]
    assert inline == [], "the node role has the managed policies only"
    kinds = {r["Type"] for r in templates["eks"]["Resources"].values()}
    assert not kinds & {
        "AWS::Lambda::Function",
        "AWS::CloudFormation::CustomResource",
        "Custom::AWSCDK-EKS-KubernetesResource",
    }


def test_the_network_stack_adds_node_subnets_outside_the_attachment(
    templates: dict[str, dict[str, Any]],
) -> None:
    network = templates["network"]
    subnets = {k: r["Properties"]["CidrBlock"] for k, r in _of_type(network, "AWS::EC2::Subnet").items()}
    node_subnets = {k for k, cidr in subnets.items() if cidr in ("10.20.50.0/24", "10.20.51.0/24")}
    assert len(node_subnets) == 2
    attachment = network["Resources"]["TransitGatewayAttachment"]["Properties"]["SubnetIds"]
    assert not {s["Ref"] for s in attachment} & node_subnets
    associations = json.dumps(_of_type(network, "AWS::EC2::TransitGatewayMulticastDomainAssociation"))
    assert not any(s in associations for s in node_subnets)
    # The multicast subnets' network ACL is not theirs (the nodes need the cluster's traffic).
    acl_associations = json.dumps(_of_type(network, "AWS::EC2::SubnetNetworkAclAssociation"))
    assert not any(s in acl_associations for s in node_subnets)
    endpoints = json.dumps(_of_type(network, "AWS::EC2::VPCEndpoint"))
    assert '.ec2"' in endpoints
    [s3] = [
        e
        for e in _of_type(network, "AWS::EC2::VPCEndpoint").values()
        if "s3" in json.dumps(e["Properties"]["ServiceName"])
    ]
    route_tables = json.dumps(s3["Properties"]["RouteTableIds"])
    for cidr in ("10.20.50.0/24", "10.20.51.0/24"):
        assert f"NetworkSubnet{pascal(cidr)}RouteTable" in route_tables, "ECR layers come from S3"


def test_make_synth_writes_the_manifests_next_to_the_templates(tmp_path: Path) -> None:
    """app.py, as `cdk synth` runs it: the Kubernetes objects land in <outdir>/eks/<region>/."""
    env = {"CDK_OUTDIR": str(tmp_path), "CDK_CONTEXT_JSON": json.dumps({"config": "config/example.yaml"})}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env={**__import__("os").environ, **env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "eks" / REGION).iterdir())
    assert written == ["00-multus.yaml", "10-network.yaml", "20-probe.yaml"]
    assert not (tmp_path / "eks" / "ap-northeast-1").exists()
