"""The mcastkit configuration: one YAML file describes a provider's multicast estate.

The regions it runs in, the multicast domains and groups in each, and the customer accounts
entitled to receive them. ``cdk synth``, ``mcastkit validate`` and the onboarding commands read
it through :func:`load_config`, so all accept and reject exactly the same files.

This package is the bottom of the import graph: no CDK, no boto3.

* :mod:`~mcastkit.config.models`: the typed models and their per-field checks;
* :mod:`~mcastkit.config.checks`: checks across fields, as structured problems;
* :mod:`~mcastkit.config.rules`: the firewall plan both the checks and the constructs read;
* :mod:`~mcastkit.config.names`: stack, export and output names both sides derive;
* :mod:`~mcastkit.config.facts`: the AWS facts, with their sources;
* :mod:`~mcastkit.config.problems` and :mod:`~mcastkit.config.loader`: errors and reading.
"""

from mcastkit.config.loader import load_config, load_overlays, parse_config
from mcastkit.config.models import (
    Capacity,
    Config,
    Customer,
    Domain,
    DomainMode,
    Eks,
    EksProbe,
    EndpointAccess,
    Entitlement,
    Group,
    NodeSubnet,
    Overlay,
    OverlayHost,
    OverlayWireGuard,
    Probe,
    Quotas,
    Region,
    Relay,
    SharedIds,
    Stream,
    Subnet,
)
from mcastkit.config.problems import ConfigError, Problem

__all__ = [
    "Capacity",
    "Config",
    "ConfigError",
    "Customer",
    "Domain",
    "DomainMode",
    "Eks",
    "EksProbe",
    "EndpointAccess",
    "Entitlement",
    "Group",
    "NodeSubnet",
    "Overlay",
    "OverlayHost",
    "OverlayWireGuard",
    "Probe",
    "Problem",
    "Quotas",
    "Region",
    "Relay",
    "SharedIds",
    "Stream",
    "Subnet",
    "load_config",
    "load_overlays",
    "parse_config",
]
