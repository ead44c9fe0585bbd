"""The EKS manifests, checked offline: every object against Kubernetes' own schemas, and what the
multicast pods depend on (one ENI holder per node, the network they name, the images they pull).

Schemas: kubernetes-validate's bundled OpenAPI schemas in strict mode (an unknown field is an error,
as ``kubectl apply --validate=strict`` makes it), for the Kubernetes version the config defaults to
and every version it accepts. The NetworkAttachmentDefinition is no core kind: it is checked against
the schema of the CustomResourceDefinition that 00-multus.yaml installs, closed the same way, and its
metadata against the core ObjectMeta schema.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, all_versions

from mcastkit.cli import build_parser
from mcastkit.commands.probe import run_recv, run_send
from mcastkit.config import facts
from mcastkit.eks import manifests as m
from mcastkit.eks.network import NETWORK_NAME, NODE_LABEL, POD_INTERFACE, multicast_network

#: The newest Kubernetes version EKS offers in standard support (EKS user guide, "Review release notes
#: for Kubernetes versions on standard support", lists 1.36; its EKS release date, June 2026, and so
#: standard support into mid-2027, are from a third-party article, inferred) that kubernetes-validate
#: bundles schemas for (it has 1.37 too, not yet on EKS in any source found): the config's default.
EKS_KUBERNETES_VERSION = "1.36"
VERSIONS = sorted(
    {EKS_KUBERNETES_VERSION, *facts.EKS_KUBERNETES_VERSIONS}, key=lambda v: tuple(map(int, v.split(".")))
)

REGION = "eu-west-1"
TOOLS_IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/mcastkit:abc123"
PROBE = m.ProbeWorkload(group_address="239.1.2.3", port=5000, receivers=3, rate=100)
INPUTS = m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE, probe=PROBE)
NAD_API_VERSION = f"{m.NAD_GROUP}/{m.NAD_VERSION}"
OBJECT_META = (
    "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict[str, Any]]]:
    return m.manifests(INPUTS)


def _objects(files: dict[str, list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for name in sorted(files):
        yield from files[name]


def _one(files: dict[str, list[dict[str, Any]]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects(files) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_specs(files: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in _objects(files):
        if obj["kind"] in ("DaemonSet", "Deployment"):
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


# -- Schemas -----------------------------------------------------------------------------------------


def test_kubernetes_validate_bundles_the_versions_checked() -> None:
    bundled = {kubernetes_validate.utils.major_minor(v) for v in all_versions()}
    assert set(VERSIONS) <= bundled


@pytest.mark.parametrize("version", VERSIONS)
def test_every_core_object_validates_strictly(files: dict[str, list[dict[str, Any]]], version: str) -> None:
    without_schema = []
    for obj in _objects(files):
        try:
            # The schema used is the version's own, not an older one standing in for it.
            assert kubernetes_validate.validate(obj, version, strict=True) == version
        except SchemaNotFoundError:
            without_schema.append((obj["apiVersion"], obj["kind"]))
    # Only the custom resource has no core schema; it is checked against its CRD below.
    assert without_schema == [(NAD_API_VERSION, m.NAD_KIND)]


def test_strict_validation_would_catch_an_unknown_field(files: dict[str, list[dict[str, Any]]]) -> None:
    deployment = copy.deepcopy(_one(files, "Deployment", "mcastkit-probe-sender"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContexts"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="securityContexts"):
        kubernetes_validate.validate(deployment, EKS_KUBERNETES_VERSION, strict=True)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD's structural schema with every object that lists its properties closed to others:
    what the API server prunes silently, the test rejects, like kubernetes-validate's strict mode."""
    schema = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema:
        schema["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
        schema["additionalProperties"] = False
    return schema


def _strict_definitions(version: str) -> referencing.Registry[Any]:
    path = (
        importlib.resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{version}.0-local-strict"
        / "_definitions.json"
    )
    definitions = json.loads(path.read_text(encoding="utf-8"))
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


def test_the_network_attachment_definition_validates_against_its_crd(
    files: dict[str, list[dict[str, Any]]],
) -> None:
    crd = _one(files, "CustomResourceDefinition", f"{m.NAD_PLURAL}.{m.NAD_GROUP}")
    nad = _one(files, m.NAD_KIND, NETWORK_NAME)
    # The CRD serves the group, version and kind the NAD is written as.
    assert nad["apiVersion"] == f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    assert nad["kind"] == crd["spec"]["names"]["kind"]
    assert crd["spec"]["scope"] == "Namespaced"
    (served,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    schema = _closed(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft202012Validator(schema).validate(nad)
    # Its metadata, which the CRD leaves open, as any object's.
    meta = {"$ref": OBJECT_META}
    jsonschema.Draft202012Validator(meta, registry=_strict_definitions(EKS_KUBERNETES_VERSION)).validate(
        nad["metadata"]
    )
    # ...and the closed schema does catch an unknown field.
    wrong = copy.deepcopy(nad)
    wrong["spec"]["configs"] = "{}"
    with pytest.raises(jsonschema.ValidationError, match="configs"):
        jsonschema.Draft202012Validator(schema).validate(wrong)


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_names_and_labels_are_what_the_api_server_accepts(files: dict[str, list[dict[str, Any]]]) -> None:
    """What the schemas leave to the API server: object names, label keys and values."""
    for obj in _objects(files):
        metadata = obj["metadata"]
        assert _DNS_SUBDOMAIN.match(metadata["name"]) and len(metadata["name"]) <= 253, metadata["name"]
        templates = (
            [obj["spec"]["template"]["metadata"]] if obj["kind"] in ("DaemonSet", "Deployment") else []
        )
        for meta in [metadata, *templates]:
            for key, value in meta.get("labels", {}).items():
                prefix, _, name = key.rpartition("/")
                assert not prefix or _DNS_SUBDOMAIN.match(prefix), key
                assert _LABEL_VALUE.match(name) and 0 < len(name) <= 63, key
                assert isinstance(value, str) and _LABEL_VALUE.match(value) and len(value) <= 63, (key, value)


# -- The multicast network ---------------------------------------------------------------------------


def test_the_files_and_their_order(files: dict[str, list[dict[str, Any]]]) -> None:
    assert list(files) == [m.MULTUS_FILE, m.NETWORK_FILE, m.PROBE_FILE]
    assert sorted(files) == list(files)  # name order is apply order: the CRD before the NAD
    kinds = {name: [o["kind"] for o in objects] for name, objects in files.items()}
    assert kinds[m.MULTUS_FILE] == [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ]
    assert kinds[m.NETWORK_FILE] == ["Namespace", m.NAD_KIND]
    assert kinds[m.PROBE_FILE] == ["Deployment", "Deployment"]


def test_without_a_probe_there_is_no_probe_file() -> None:
    files = m.manifests(m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE))
    assert list(files) == [m.MULTUS_FILE, m.NETWORK_FILE]


def test_the_network_config_is_the_multicast_chain(files: dict[str, list[dict[str, Any]]]) -> None:
    nad = _one(files, m.NAD_KIND, NETWORK_NAME)
    assert nad["metadata"]["namespace"] == INPUTS.namespace
    assert json.loads(nad["spec"]["config"]) == multicast_network()


def test_the_namespace_enforces_the_restricted_pod_security_standard(
    files: dict[str, list[dict[str, Any]]],
) -> None:
    namespace = _one(files, "Namespace", INPUTS.namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- Multus ------------------------------------------------------------------------------------------


def test_multus_wraps_the_vpc_cni_on_the_multicast_nodes(files: dict[str, list[dict[str, Any]]]) -> None:
    daemon_set = _one(files, "DaemonSet", m.MULTUS_DAEMONSET)
    assert daemon_set["metadata"]["namespace"] == "kube-system"
    pod = daemon_set["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {NODE_LABEL: "true"}
    assert pod["hostNetwork"] is True
    assert {"operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["serviceAccountName"] == _one(files, "ServiceAccount", m.MULTUS_NAME)["metadata"]["name"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths["cni"] == "/etc/cni/net.d"
    assert host_paths["cnibin"] == "/opt/cni/bin"
    volume_names = {v["name"] for v in pod["volumes"]}
    for container in _containers(pod):
        assert {mount["name"] for mount in container["volumeMounts"]} <= volume_names
    # The daemon generates its configuration from the VPC CNI's, by the ConfigMap it mounts.
    config_map = _one(files, "ConfigMap", m.MULTUS_CONFIG_MAP)
    daemon_config = json.loads(config_map["data"]["daemon-config.json"])
    assert daemon_config["multusConfigFile"] == "auto"
    assert daemon_config["multusMasterCNI"] == "10-aws.conflist"
    (daemon,) = pod["containers"]
    assert daemon["command"] == ["/usr/src/multus-cni/bin/multus-daemon"]
    mounted = {mount["name"]: mount["mountPath"] for mount in daemon["volumeMounts"]}
    assert mounted[m.MULTUS_CONFIG_MAP] == "/etc/cni/net.d/multus.d"
    assert mounted["cni"] == daemon_config["cniConfigDir"]


def test_multus_may_read_pods_and_network_definitions(files: dict[str, list[dict[str, Any]]]) -> None:
    role = _one(files, "ClusterRole", m.MULTUS_NAME)
    binding = _one(files, "ClusterRoleBinding", m.MULTUS_NAME)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": m.MULTUS_NAME, "namespace": "kube-system"}
    ]
    granted = {
        (group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {(m.NAD_GROUP, "*"), ("", "pods"), ("", "pods/status"), ("", "events")} <= granted


@pytest.mark.parametrize("region", facts.MULTICAST_REGIONS)
def test_every_multicast_region_pulls_multus_from_its_own_registry(region: str) -> None:
    image = m.multus_image(region)
    account = m.EKS_ADDON_REGISTRY_ACCOUNTS[region]
    assert image == f"{account}.dkr.ecr.{region}.amazonaws.com/eks/multus-cni:{m.MULTUS_TAG}"
    files = m.manifests(m.ManifestInputs(region=region, tools_image=TOOLS_IMAGE))
    pod = _one(files, "DaemonSet", m.MULTUS_DAEMONSET)["spec"]["template"]["spec"]
    assert {c["image"] for c in _containers(pod)} == {image}


def test_the_registry_table_is_well_formed() -> None:
    for region, account in m.EKS_ADDON_REGISTRY_ACCOUNTS.items():
        assert re.fullmatch(r"[a-z]{2}-[a-z]+-\d", region), region
        assert re.fullmatch(r"\d{12}", account), (region, account)
    assert m.MULTUS_TAG.endswith("_thick")  # the manifest is the thick plugin's: daemon and shim


@pytest.mark.parametrize("region", ["xx-nowhere-1", "cn-north-1", "us-gov-west-1", ""])
def test_a_region_without_a_known_registry_is_refused(region: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(region))):
        m.multus_image(region)
    with pytest.raises(ValueError, match=re.escape(repr(region))):
        m.manifests(m.ManifestInputs(region=region, tools_image=TOOLS_IMAGE))


# -- The probe ---------------------------------------------------------------------------------------


def _probe(files: dict[str, list[dict[str, Any]]], component: str) -> dict[str, Any]:
    return _one(files, "Deployment", f"mcastkit-probe-{component}")


def test_one_sender_and_the_receivers(files: dict[str, list[dict[str, Any]]]) -> None:
    assert _probe(files, "sender")["spec"]["replicas"] == 1
    assert _probe(files, "receiver")["spec"]["replicas"] == PROBE.receivers
    for component in ("sender", "receiver"):
        deployment = _probe(files, component)
        # Stop before start: a surge pod would find every multicast ENI held.
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template_labels.items()
        assert deployment["metadata"]["namespace"] == INPUTS.namespace


@pytest.mark.parametrize("component", ["sender", "receiver"])
def test_each_probe_pod_holds_a_multicast_eni_alone_on_its_node(
    files: dict[str, list[dict[str, Any]]], component: str
) -> None:
    template = _probe(files, component)["spec"]["template"]
    pod = template["spec"]
    labels = template["metadata"]["labels"]
    assert pod["nodeSelector"] == {NODE_LABEL: "true"}
    assert labels[NODE_LABEL] == "holder"
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"] == {"matchLabels": {NODE_LABEL: "holder"}}
    assert term["namespaceSelector"] == {}  # holders in any namespace
    # The term selects the pod itself: two holders repel each other, sender and receivers alike.
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("component", ["sender", "receiver"])
def test_each_probe_pod_asks_for_the_multicast_network_as_net1(
    files: dict[str, list[dict[str, Any]]], component: str
) -> None:
    nad = _one(files, m.NAD_KIND, NETWORK_NAME)
    annotation = _probe(files, component)["spec"]["template"]["metadata"]["annotations"][
        m.NETWORKS_ANNOTATION
    ]
    assert m.NETWORKS_ANNOTATION == "k8s.v1.cni.cncf.io/networks"
    assert json.loads(annotation) == [
        {
            "name": nad["metadata"]["name"],
            "namespace": nad["metadata"]["namespace"],
            "interface": POD_INTERFACE,
        }
    ]
    assert POD_INTERFACE == "net1"


def test_the_probe_commands_are_the_ecs_tasks_on_net1(files: dict[str, list[dict[str, Any]]]) -> None:
    (receiver,) = _probe(files, "receiver")["spec"]["template"]["spec"]["containers"]
    (sender,) = _probe(files, "sender")["spec"]["template"]["spec"]["containers"]
    assert "command" not in receiver and "command" not in sender  # the image's entry point: mcastkit
    target = "239.1.2.3:5000"
    assert receiver["args"] == [
        *("probe", "recv", "--group", target, "--interface", "net1"),
        *("--count", "0", "--report-every", "60", "--json"),
    ]
    assert sender["args"] == [
        *("probe", "send", "--group", target, "--interface", "net1", "--ttl", "8"),
        *("--rate", "100", "--count", "0", "--size", "64", "--json"),
    ]
    # mcastkit's own parser takes them: open-ended streams, JSON lines on standard output.
    parsed_receiver = build_parser().parse_args(receiver["args"])
    assert parsed_receiver.handler is run_recv
    assert (parsed_receiver.count, parsed_receiver.report_every, parsed_receiver.json) == (0, 60.0, True)
    assert parsed_receiver.interface == "net1"
    parsed_sender = build_parser().parse_args(sender["args"])
    assert parsed_sender.handler is run_send
    assert (parsed_sender.count, parsed_sender.rate, parsed_sender.ttl, parsed_sender.json) == (
        0,
        100,
        8,
        True,
    )
    assert str(parsed_sender.group) == target


def test_the_probe_pods_run_the_tools_image(files: dict[str, list[dict[str, Any]]]) -> None:
    for component in ("sender", "receiver"):
        pod = _probe(files, component)["spec"]["template"]["spec"]
        assert {c["image"] for c in _containers(pod)} == {TOOLS_IMAGE}


def test_only_multus_is_privileged(files: dict[str, list[dict[str, Any]]]) -> None:
    privileged = set()
    for where, pod in _pod_specs(files):
        if pod.get("hostNetwork") or pod.get("hostPID"):
            privileged.add(where)
        for container in _containers(pod):
            context = container.get("securityContext", {})
            if context.get("privileged") or context.get("capabilities", {}).get("add"):
                privileged.add(f"{where}:{container['name']}")
    assert privileged == {
        f"DaemonSet/{m.MULTUS_DAEMONSET}",
        f"DaemonSet/{m.MULTUS_DAEMONSET}:install-multus-binary",
        f"DaemonSet/{m.MULTUS_DAEMONSET}:kube-multus",
    }


@pytest.mark.parametrize("component", ["sender", "receiver"])
def test_the_probe_pods_meet_the_restricted_standard(
    files: dict[str, list[dict[str, Any]]], component: str
) -> None:
    pod = _probe(files, component)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (
        pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 10001
    )  # the Dockerfile's
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert all("hostPath" not in v for v in pod["volumes"])
    for container in _containers(pod):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        # The read-only root: /tmp is the one writable place, as on ECS.
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_the_dockerfile_runs_as_the_uid_the_pods_declare() -> None:
    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {m.TOOLS_UID}:{m.TOOLS_UID}" in dockerfile.splitlines()
    assert 'ENTRYPOINT ["mcastkit"]' in dockerfile.splitlines()


def test_the_probe_resources_follow_the_ecs_tasks(files: dict[str, list[dict[str, Any]]]) -> None:
    (sender,) = _probe(files, "sender")["spec"]["template"]["spec"]["containers"]
    assert sender["resources"] == {
        "requests": {"cpu": "250m", "memory": "128Mi"},
        "limits": {"memory": "128Mi"},
    }
    # A receiver's latency samples grow with the rate: 8 bytes a datagram for one interval, twice.
    fast = m.ProbeWorkload(group_address="239.1.2.3", port=5000, receivers=1, rate=100_000)
    files = m.manifests(m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE, probe=fast))
    (receiver,) = _probe(files, "receiver")["spec"]["template"]["spec"]["containers"]
    expected = 128 + math.ceil(2 * 100_000 * 60 * 8 / 2**20)
    assert receiver["resources"]["limits"] == {"memory": f"{expected}Mi"}
    assert receiver["resources"]["requests"]["memory"] == f"{expected}Mi"


# -- Inputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"group_address": "10.0.0.1"}, "not an IPv4 multicast"),
        ({"group_address": "ff02::1"}, "not an IPv4 multicast"),
        ({"port": 0}, "port 0"),
        ({"receivers": 0}, "receivers 0"),
        ({"rate": 0}, "rate 0"),
        ({"ttl": 256}, "ttl 256"),
    ],
)
def test_a_bad_probe_is_refused(changes: dict[str, Any], message: str) -> None:
    fields = {"group_address": "239.1.2.3", "port": 5000, "receivers": 1, "rate": 10, **changes}
    with pytest.raises(ValueError, match=message):
        m.ProbeWorkload(**fields)


@pytest.mark.parametrize("namespace", ["kube-system", "default", "Mcastkit", "a_b", ""])
def test_a_namespace_not_ours_to_label_is_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE, namespace=namespace)


def test_another_namespace_is_used_throughout() -> None:
    files = m.manifests(
        m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE, namespace="feeds", probe=PROBE)
    )
    for obj in [*files[m.NETWORK_FILE], *files[m.PROBE_FILE]]:
        assert obj["metadata"].get("namespace", obj["metadata"]["name"]) == "feeds"
    annotation = _probe(files, "sender")["spec"]["template"]["metadata"]["annotations"][m.NETWORKS_ANNOTATION]
    assert json.loads(annotation)[0]["namespace"] == "feeds"


# -- Files -------------------------------------------------------------------------------------------


def test_render_round_trips_in_the_order_written(files: dict[str, list[dict[str, Any]]]) -> None:
    for objects in files.values():
        text = m.render(objects)
        assert text.startswith("# Generated by mcastkit from its config")
        assert "kubectl apply -f 00-multus.yaml" in text
        assert list(yaml.safe_load_all(text)) == objects
        loaded = list(yaml.safe_load_all(text))
        for original, again in zip(objects, loaded, strict=True):
            assert list(again) == list(original)  # keys as written: apiVersion, kind, metadata, ...
        assert "&id" not in text and "*id" not in text  # no YAML anchors: each object reads whole
    # The daemon configuration reads as JSON in a literal block, not one escaped line.
    assert "daemon-config.json: |\n" in m.render(files[m.MULTUS_FILE])


def test_write_manifests_writes_each_file_and_drops_a_stale_one(tmp_path: Path) -> None:
    target = tmp_path / "manifests"
    with_probe = m.manifests(INPUTS)
    paths = m.write_manifests(target, with_probe)
    assert paths == [target / name for name in sorted(with_probe)]
    for path in paths:
        assert list(yaml.safe_load_all(path.read_text(encoding="utf-8"))) == with_probe[path.name]
    foreign = target / "99-mine.yaml"
    foreign.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n", encoding="utf-8")
    # The config drops its probe: the probe's file goes, someone else's stays.
    paths = m.write_manifests(target, m.manifests(m.ManifestInputs(region=REGION, tools_image=TOOLS_IMAGE)))
    assert sorted(p.name for p in target.iterdir()) == [m.MULTUS_FILE, m.NETWORK_FILE, "99-mine.yaml"]
    assert [p.name for p in paths] == [m.MULTUS_FILE, m.NETWORK_FILE]


@pytest.mark.parametrize("name", ["../00-multus.yaml", "sub/10-network.yaml", "notes.txt"])
def test_write_manifests_refuses_a_name_outside_the_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        m.write_manifests(tmp_path, {name: []})
