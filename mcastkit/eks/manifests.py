"""The Kubernetes manifests of an EKS cluster whose pods join a multicast domain.

Three files, applied in name order:

- ``00-multus.yaml``: Multus, as AWS publishes it for the Amazon VPC CNI (the thick plugin: a
  daemon on each node, and a shim in /opt/cni/bin that the kubelet calls), wrapping the VPC CNI's
  own configuration, so every pod keeps its VPC address on ``eth0`` and a pod that asks gets more
  interfaces. Only on the multicast nodes: see :func:`multus`.
- ``10-network.yaml``: the namespace and the ``NetworkAttachmentDefinition`` of the pods' multicast
  network, whose CNI chain is :func:`mcastkit.eks.network.multicast_network`.
- ``20-probe.yaml`` (with a probe): a sender and receivers of one group, each pod holding its node's
  multicast ENI, as the ECS probe tasks (:mod:`mcastkit.constructs.probe_tasks`) do on ECS.

Pure data: no CDK, no AWS call. The stacks and the command line turn the config into
:class:`ManifestInputs`; the tests validate every object offline against Kubernetes' schemas.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from mcastkit.eks.network import NETWORK_NAME, NODE_LABEL, NODE_LABEL_VALUE, POD_INTERFACE, multicast_network
from mcastkit.probe.sizing import MEMORY_MIB, receiver_memory_mib

#: One Kubernetes object, as ``kubectl apply`` reads it.
Manifest = dict[str, Any]

MULTUS_FILE: Final = "00-multus.yaml"
NETWORK_FILE: Final = "10-network.yaml"
PROBE_FILE: Final = "20-probe.yaml"

#: The same key on a pod, with this value, marks the pod that holds its node's multicast ENI: the
#: pods' anti-affinity on it keeps a second holder off the node (host-device can move the one ENI
#: into one pod only; a second pod's CNI ADD would fail and leave the pod stuck creating).
HOLDER_LABEL_VALUE: Final = "holder"
#: Multus reads a pod's extra networks from this annotation.
NETWORKS_ANNOTATION: Final = "k8s.v1.cni.cncf.io/networks"
HOSTNAME_TOPOLOGY: Final = "kubernetes.io/hostname"
ZONE_TOPOLOGY: Final = "topology.kubernetes.io/zone"

# -- Multus ------------------------------------------------------------------------------------------

#: The image AWS builds of Multus for EKS: the thick plugin of Multus v4.1.4, as referenced by the
#: newest manifest in aws/amazon-vpc-cni-k8s, config/multus/v4.1.4-eksbuild.3/multus-daemonset-thick.yml
#: (last changed in fa2dfdaf4868, June 2025; still the newest at the repository's August 2026 head).
MULTUS_REPOSITORY: Final = "eks/multus-cni"
MULTUS_TAG: Final = "v4.1.4-eksbuild.3_thick"

#: The account of the EKS add-on image registry ``<account>.dkr.ecr.<region>.amazonaws.com`` in each
#: commercial Region, from the EKS user guide, "View Amazon container image registries for Amazon EKS
#: add-ons": https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html
#: (source awsdocs/amazon-eks-user-guide latest/ug/workloads/add-ons-images.adoc at 4d52b4d05e34; the
#: published page of 2026 shows the same accounts for the Regions listed here). A node pulls from its
#: own Region's registry: a private cluster's nodes reach ECR only through their VPC's endpoints, which
#: serve that Region alone. The China and GovCloud partitions (other hosts) are left out. AWS's
#: manifest names only us-west-2's registry; that the same repository and tag are in every Region's
#: registry is inferred from the page ("Amazon EKS replicates the images to a repository in each
#: Amazon EKS supported AWS Region") and from the per-partition copies of AWS's older Multus
#: manifests, not listed image by image.
EKS_ADDON_REGISTRY_ACCOUNTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "af-south-1": "877085696533",
        "ap-east-1": "800184023465",
        "ap-northeast-1": "602401143452",
        "ap-northeast-2": "602401143452",
        "ap-northeast-3": "602401143452",
        "ap-south-1": "602401143452",
        "ap-south-2": "900889452093",
        "ap-southeast-1": "602401143452",
        "ap-southeast-2": "602401143452",
        "ap-southeast-3": "296578399912",
        "ap-southeast-4": "491585149902",
        "ca-central-1": "602401143452",
        "ca-west-1": "761377655185",
        "eu-central-1": "602401143452",
        "eu-central-2": "900612956339",
        "eu-north-1": "602401143452",
        "eu-south-1": "590381155156",
        "eu-south-2": "455263428931",
        "eu-west-1": "602401143452",
        "eu-west-2": "602401143452",
        "eu-west-3": "602401143452",
        "il-central-1": "066635153087",
        "me-central-1": "759879836304",
        "me-south-1": "558608220178",
        "sa-east-1": "602401143452",
        "us-east-1": "602401143452",
        "us-east-2": "602401143452",
        "us-west-1": "602401143452",
        "us-west-2": "602401143452",
    }
)
ADDON_REGISTRIES_DOC: Final = "https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html"

MULTUS_NAMESPACE: Final = "kube-system"
#: AWS's names, kept: applied over AWS's own Multus manifest, these objects replace it rather than
#: start a second daemon writing the same configuration file.
MULTUS_NAME: Final = "multus"
MULTUS_DAEMONSET: Final = "kube-multus-ds"
MULTUS_CONFIG_MAP: Final = "multus-daemon-config"
#: The VPC CNI's configuration file: Multus wraps it as the cluster's default network.
VPC_CNI_CONFLIST: Final = "10-aws.conflist"
NAD_GROUP: Final = "k8s.cni.cncf.io"
NAD_VERSION: Final = "v1"
NAD_KIND: Final = "NetworkAttachmentDefinition"
NAD_PLURAL: Final = "network-attachment-definitions"

# -- Probe -------------------------------------------------------------------------------------------

#: The uid:gid the tools image's Dockerfile creates and runs as.
TOOLS_UID: Final = 10001
#: A probe container's CPU share, as the ECS probe tasks' 256 units (its memory: mcastkit.probe.sizing,
#: shared with them).
PROBE_CPU: Final = "250m"
#: The image's /tmp: a small memory-backed volume, as the ECS tasks' tmpfs (the root is read-only).
TMP_SIZE: Final = "16Mi"
#: SIGTERM to SIGKILL, as the ECS probe tasks' stop timeout.
PROBE_STOP_SECONDS: Final = 10

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class ProbeWorkload:
    """A probe sender and ``receivers`` receivers of one group, as in the config's ``eks.probe``.

    ``rate`` is the sender's datagrams per second (at least 1: an unpaced sender that never stops
    would flood the domain), ``ttl`` its multicast TTL, ``size`` its payload bytes, and
    ``report_seconds`` each receiver's report interval.
    """

    group_address: str
    port: int
    receivers: int
    rate: int
    ttl: int = 8
    size: int = 64
    report_seconds: int = 60

    def __post_init__(self) -> None:
        try:
            multicast = ipaddress.IPv4Address(self.group_address).is_multicast
        except ValueError:
            multicast = False
        if not multicast:
            raise ValueError(f"probe group {self.group_address!r} is not an IPv4 multicast address")
        for name, value, low, high in (
            ("port", self.port, 1, 65535),
            ("receivers", self.receivers, 1, None),
            ("rate", self.rate, 1, None),
            ("ttl", self.ttl, 1, 255),
            ("size", self.size, 1, None),
            ("report_seconds", self.report_seconds, 1, None),
        ):
            if value < low or (high is not None and value > high):
                raise ValueError(f"probe {name} {value} is out of range ({low} to {high or 'any'})")

    @property
    def target(self) -> str:
        return f"{self.group_address}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ManifestInputs:
    """What the manifests depend on: the cluster's Region (for the Multus image), the namespace of
    the multicast network and probe, the tools image (the repository's Dockerfile, pushed where the
    nodes can pull it) and the probe, if any."""

    region: str
    tools_image: str
    namespace: str = "mcastkit"
    probe: ProbeWorkload | None = None

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a DNS label (lower case, digits, '-')")
        # The manifests label their namespace (pod security); Kubernetes' own are not theirs to change.
        if self.namespace == "default" or self.namespace.startswith("kube-"):
            raise ValueError(f"namespace {self.namespace!r} belongs to Kubernetes: choose another")
        if not self.tools_image.strip():
            raise ValueError("tools_image is empty")


def multus_image(region: str) -> str:
    """AWS's Multus image in ``region``'s own EKS add-on registry; a ``ValueError`` naming the Region
    when mcastkit knows no registry there."""
    account = EKS_ADDON_REGISTRY_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(
            f"no EKS add-on image registry is known for region {region!r}, so no Multus image its "
            f"nodes can pull (registries: {ADDON_REGISTRIES_DOC})"
        )
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{MULTUS_REPOSITORY}:{MULTUS_TAG}"


def manifests(inputs: ManifestInputs) -> dict[str, list[Manifest]]:
    """File name -> the objects of that file, in apply order."""
    files = {
        MULTUS_FILE: multus(inputs.region),
        NETWORK_FILE: network(inputs.namespace),
    }
    if inputs.probe is not None:
        files[PROBE_FILE] = probe(inputs.probe, namespace=inputs.namespace, image=inputs.tools_image)
    return files


# -- 00-multus.yaml ----------------------------------------------------------------------------------


def multus(region: str) -> list[Manifest]:
    """Multus as AWS's newest manifest for the VPC CNI deploys it, written here, on the multicast
    nodes only.

    The thick plugin: a privileged daemon per node (host network and PID namespace, the node's root
    mounted, since it runs the delegate plugins, ours included, chrooted into the node and moves
    interfaces between namespaces) writes a Multus configuration that wraps ``10-aws.conflist`` ahead
    of it in /etc/cni/net.d, and installs the shim the kubelet calls in /opt/cni/bin.

    Why only the multicast nodes (``nodeSelector``): only pods that hold a multicast ENI need a second
    interface, and they run only there; elsewhere the VPC CNI stays the node's sole plugin, without a
    privileged daemon on the path of every pod's network setup. Multus removes the configuration it
    wrote when its daemon stops (Multus v4.1.4, pkg/server/config/manager.go), so a node is not left
    calling a shim with no daemon. Applied over an AWS Multus that ran on every node, though, a daemon
    killed rather than stopped leaves its file: such a node would then fail every new pod's network
    until the file is removed.

    Departures from AWS's manifest: the node selector, and ``system-node-critical`` priority (once
    its configuration is written, no pod on the node starts networking without the daemon; the VPC
    CNI's own daemon has that priority).
    """
    image = multus_image(region)
    labels = {"tier": "node", "app": "multus", "name": MULTUS_NAME}
    daemon_config = {
        "chrootDir": "/hostroot",
        "confDir": "/host/etc/cni/net.d",
        "logFile": "/var/log/multus.log",
        "logLevel": "verbose",
        "socketDir": "/host/run/multus/",
        "cniVersion": "0.3.1",
        "logToStderr": True,
        "cniConfigDir": "/host/etc/cni/net.d",
        # Generate the configuration from the VPC CNI's, and again whenever that file changes.
        "multusConfigFile": "auto",
        "multusAutoconfigDir": "/host/etc/cni/net.d",
        "multusMasterCNI": VPC_CNI_CONFLIST,
    }
    # (volume name, host path, mount path in the daemon, mount propagation or None)
    host_mounts: list[tuple[str, str, str, str | None]] = [
        ("cni", "/etc/cni/net.d", "/host/etc/cni/net.d", None),
        # The daemon runs plugins by their node path: /opt/cni/bin must be the same path inside.
        ("cnibin", "/opt/cni/bin", "/opt/cni/bin", None),
        ("host-run", "/run", "/host/run", None),
        ("host-var-lib-cni-multus", "/var/lib/cni/multus", "/var/lib/cni/multus", None),
        ("host-var-lib-kubelet", "/var/lib/kubelet", "/var/lib/kubelet", "HostToContainer"),
        ("host-run-k8s-cni-cncf-io", "/run/k8s.cni.cncf.io", "/run/k8s.cni.cncf.io", None),
        ("host-run-netns", "/run/netns/", "/run/netns", "HostToContainer"),
        ("hostroot", "/", "/hostroot", "HostToContainer"),
    ]
    mounts: list[dict[str, Any]] = []
    for name, _host, path, propagation in host_mounts:
        mount: dict[str, Any] = {"name": name, "mountPath": path}
        if propagation:
            mount["mountPropagation"] = propagation
        mounts.append(mount)
    mounts.append({"name": MULTUS_CONFIG_MAP, "mountPath": "/etc/cni/net.d/multus.d", "readOnly": True})
    volumes: list[dict[str, Any]] = [
        {"name": name, "hostPath": {"path": host}} for name, host, _, _ in host_mounts
    ]
    volumes.append(
        {
            "name": MULTUS_CONFIG_MAP,
            "configMap": {
                "name": MULTUS_CONFIG_MAP,
                "items": [{"key": "daemon-config.json", "path": "daemon-config.json"}],
            },
        }
    )
    privileged = {"privileged": True}
    daemon_set: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": MULTUS_DAEMONSET, "namespace": MULTUS_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": {"name": MULTUS_NAME}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "nodeSelector": {NODE_LABEL: NODE_LABEL_VALUE},
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": "kubernetes.io/os",
                                                "operator": "In",
                                                "values": ["linux"],
                                            },
                                            {
                                                "key": "eks.amazonaws.com/compute-type",
                                                "operator": "NotIn",
                                                "values": ["fargate"],
                                            },
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "hostNetwork": True,
                    "hostPID": True,
                    "priorityClassName": "system-node-critical",
                    # Every taint: a multicast node that cannot run Multus cannot run its pods either.
                    "tolerations": [
                        {"operator": "Exists", "effect": "NoSchedule"},
                        {"operator": "Exists", "effect": "NoExecute"},
                    ],
                    "serviceAccountName": MULTUS_NAME,
                    "terminationGracePeriodSeconds": 10,
                    "initContainers": [
                        {
                            "name": "install-multus-binary",
                            "image": image,
                            "command": [
                                "cp",
                                "-f",
                                "/usr/src/multus-cni/bin/multus-shim",
                                "/host/opt/cni/bin/multus-shim",
                            ],
                            "resources": {"requests": {"cpu": "10m", "memory": "15Mi"}},
                            "securityContext": dict(privileged),
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "volumeMounts": [
                                {
                                    "name": "cnibin",
                                    "mountPath": "/host/opt/cni/bin",
                                    "mountPropagation": "Bidirectional",
                                }
                            ],
                        }
                    ],
                    "containers": [
                        {
                            "name": "kube-multus",
                            "image": image,
                            "command": ["/usr/src/multus-cni/bin/multus-daemon"],
                            "env": [
                                {
                                    "name": "MULTUS_NODE_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                }
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "200Mi"},
                                "limits": {"cpu": "100m", "memory": "200Mi"},
                            },
                            "securityContext": dict(privileged),
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
    return [
        network_attachment_definition_crd(),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": MULTUS_NAME, "namespace": MULTUS_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": MULTUS_NAME},
            "rules": [
                {"apiGroups": [NAD_GROUP], "resources": ["*"], "verbs": ["*"]},
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/status"],
                    "verbs": ["get", "list", "update", "watch"],
                },
                {
                    "apiGroups": ["", "events.k8s.io"],
                    "resources": ["events"],
                    "verbs": ["create", "patch", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": MULTUS_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": MULTUS_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": MULTUS_NAME, "namespace": MULTUS_NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": MULTUS_CONFIG_MAP, "namespace": MULTUS_NAMESPACE, "labels": dict(labels)},
            "data": {"daemon-config.json": json.dumps(daemon_config, indent=4) + "\n"},
        },
        daemon_set,
    ]


def network_attachment_definition_crd() -> Manifest:
    """The ``NetworkAttachmentDefinition`` resource of the Network Plumbing Working Group's
    multi-network specification (https://github.com/k8snetworkplumbingwg/multi-net-spec): a
    namespaced object whose ``spec.config`` is a CNI configuration as a JSON string."""

    def text(description: str) -> dict[str, str]:
        return {"type": "string", "description": description}

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{NAD_PLURAL}.{NAD_GROUP}"},
        "spec": {
            "group": NAD_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": NAD_PLURAL,
                "singular": "network-attachment-definition",
                "kind": NAD_KIND,
                "shortNames": ["net-attach-def"],
            },
            "versions": [
                {
                    "name": NAD_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "description": "A network a pod may attach to besides the cluster's default "
                            "network (Network Plumbing Working Group multi-network specification).",
                            "type": "object",
                            "properties": {
                                "apiVersion": text("The versioned schema of this representation."),
                                "kind": text("The REST resource this object represents."),
                                "metadata": {"type": "object"},
                                "spec": {
                                    "description": "How pods attach to the network.",
                                    "type": "object",
                                    "properties": {
                                        "config": text("The network's CNI configuration, as JSON."),
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


# -- 10-network.yaml ---------------------------------------------------------------------------------


def network(namespace: str) -> list[Manifest]:
    """The namespace and the multicast network in it.

    The namespace enforces the ``restricted`` pod security standard: the pods that hold a multicast
    ENI need no privilege (the CNI chain, run by Multus on the node, configured the interface before
    they start), so nothing in it may have any.
    """
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "mcastkit",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            },
        },
        {
            "apiVersion": f"{NAD_GROUP}/{NAD_VERSION}",
            "kind": NAD_KIND,
            "metadata": {
                "name": NETWORK_NAME,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/part-of": "mcastkit"},
            },
            "spec": {"config": json.dumps(multicast_network())},
        },
    ]


# -- 20-probe.yaml -----------------------------------------------------------------------------------


def probe(workload: ProbeWorkload, *, namespace: str, image: str) -> list[Manifest]:
    """The probe receivers and sender, each pod holding its node's multicast ENI as ``net1``.

    The same commands as the ECS probe tasks, on ``net1`` instead of the task ENI: the sender sends
    without end, each receiver writes one JSON report per interval to its standard output, which
    ``kubectl logs`` shows. Every pod carries the holder label and refuses (required anti-affinity, in
    any namespace) a node where a pod with that label runs: one multicast ENI per node, so at most one
    holder per node, and the receivers land on different nodes from each other and the sender.

    ``Recreate`` deployments: a rolling update would start the new pod before stopping the old one,
    and with every multicast node's ENI held the new pod could never be placed (the ECS services stop
    first too). Receivers spread over zones where they can, as on ECS.
    """
    receive = ["probe", "recv", "--group", workload.target, "--interface", POD_INTERFACE]
    receive += ["--count", "0", "--report-every", str(workload.report_seconds), "--json"]
    send = ["probe", "send", "--group", workload.target, "--interface", POD_INTERFACE]
    send += ["--ttl", str(workload.ttl), "--rate", str(workload.rate), "--count", "0"]
    send += ["--size", str(workload.size), "--json"]
    return [
        _probe_deployment(
            "receiver",
            replicas=workload.receivers,
            args=receive,
            memory_mib=receiver_memory_mib(workload.rate, workload.report_seconds),
            namespace=namespace,
            image=image,
        ),
        _probe_deployment(
            "sender", replicas=1, args=send, memory_mib=MEMORY_MIB, namespace=namespace, image=image
        ),
    ]


def _probe_deployment(
    component: str, *, replicas: int, args: list[str], memory_mib: int, namespace: str, image: str
) -> Manifest:
    selector = {"app.kubernetes.io/name": "mcastkit-probe", "app.kubernetes.io/component": component}
    labels = {**selector, "app.kubernetes.io/part-of": "mcastkit", NODE_LABEL: HOLDER_LABEL_VALUE}
    attachment = [{"name": NETWORK_NAME, "namespace": namespace, "interface": POD_INTERFACE}]
    memory = f"{memory_mib}Mi"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"mcastkit-probe-{component}", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {NETWORKS_ANNOTATION: json.dumps(attachment)},
                },
                "spec": {
                    "nodeSelector": {NODE_LABEL: NODE_LABEL_VALUE},
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {NODE_LABEL: HOLDER_LABEL_VALUE}},
                                    # Every namespace: the ENI is the node's, whoever holds it.
                                    "namespaceSelector": {},
                                    "topologyKey": HOSTNAME_TOPOLOGY,
                                }
                            ]
                        }
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": ZONE_TOPOLOGY,
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                        }
                    ],
                    # The probe talks to no Kubernetes API and needs no service's address.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": PROBE_STOP_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": TOOLS_UID,
                        "runAsGroup": TOOLS_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": component,
                            "image": image,
                            # The image's entry point is ``mcastkit``.
                            "args": args,
                            # No CPU limit, as the ECS tasks' CPU units (a share, not a cap): CFS
                            # throttling would show up as latency in the very reports being made.
                            "resources": {
                                "requests": {"cpu": PROBE_CPU, "memory": memory},
                                "limits": {"memory": memory},
                            },
                            "securityContext": {
                                "privileged": False,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                # Joining and sending multicast on a configured interface needs none.
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}}],
                },
            },
        },
    }


# -- Files -------------------------------------------------------------------------------------------

HEADER_FIRST_LINE: Final = "# Generated by mcastkit from its config: change the config and generate again"
HEADER: Final = f"""{HEADER_FIRST_LINE}
# rather than edit this file.
# Apply the files of this directory in name order, Multus first, and wait for it before the rest:
#   kubectl apply -f {MULTUS_FILE}
#   kubectl wait --for=condition=Established crd/{NAD_PLURAL}.{NAD_GROUP}
#   kubectl -n {MULTUS_NAMESPACE} rollout status daemonset/{MULTUS_DAEMONSET}
#   kubectl apply -f {NETWORK_FILE}    # then -f {PROBE_FILE}, when there is one
"""


class _Dumper(yaml.SafeDumper):
    """``yaml.safe_dump_all``'s dumper, with two changes for people reading the files: no anchors
    and aliases where two objects share a value (each object reads whole), and multi-line strings
    (Multus' daemon configuration) as literal blocks rather than one escaped line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def render(documents: list[Manifest]) -> str:
    """The objects as one multi-document YAML file, keys in the order written, after a header
    saying where the file comes from and how to apply it."""
    body = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return HEADER + body


def write_manifests(directory: Path, files: dict[str, list[Manifest]]) -> list[Path]:
    """Write each file of ``files`` (name -> objects) into ``directory``, created if need be; return
    the paths written, in name order.

    A YAML file of the directory that mcastkit generated earlier but ``files`` no longer has (the
    probe's, once the config has none) is removed, so applying the directory does not bring it
    back. Other files are left alone.
    """
    for name in files:
        if Path(name).name != name or not name.endswith(".yaml"):
            raise ValueError(f"manifest file name {name!r} is not a plain *.yaml name")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in sorted(directory.glob("*.yaml")):
        if stale.name not in files and _generated(stale):
            stale.unlink()
    written = []
    for name in sorted(files):
        path = directory / name
        path.write_text(render(files[name]), encoding="utf-8")
        written.append(path)
    return written


def _generated(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().rstrip("\n") == HEADER_FIRST_LINE
    except (OSError, UnicodeDecodeError):
        return False
