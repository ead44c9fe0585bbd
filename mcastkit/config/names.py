"""Every name both sides derive from the config: the CDK stacks and the boto3 commands.

Onboarding must not start the CDK (jsii) runtime, so the names the stacks create and the
commands look up live here, once, in plain Python: stack names, export and output names,
construct-id spelling, and the patterns of the AWS ids the config records.
"""

from __future__ import annotations

import re
from typing import Final

#: A project, domain, group or customer name: it becomes part of stack names, export names and
#: construct ids. 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen.
NAME_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
#: An overlay's device is ``mck-<name>``: Linux interface names are at most 15 characters.
OVERLAY_NAME_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?$"
ACCOUNT_ID_PATTERN: Final = r"^\d{12}$"
#: A Curve25519 key in base64, as ``wg genkey`` and ``wg pubkey`` print it (32 bytes: 43
#: characters, the last of which holds 4 bits, and one ``=``).
WIREGUARD_KEY_PATTERN: Final = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
ORGANIZATION_ID_PATTERN: Final = r"^o-[a-z0-9]{10,32}$"
TRANSIT_GATEWAY_ID_PATTERN: Final = r"^tgw-[0-9a-f]{8,17}$"
DOMAIN_ID_PATTERN: Final = r"^tgw-mcast-domain-[0-9a-f]{8,17}$"
ENI_ID_PATTERN: Final = r"^eni-[0-9a-f]{8,17}$"
#: An IAM role's ARN (IAM user guide, "IAM identifiers"): a path of its own is allowed.
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
HTTPS_URL_PATTERN: Final = r"^https://[^\s/]+\S*$"
IAM_ROLE_ARN_PATTERN: Final = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
SECRET_ARN_PATTERN: Final = (
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)
SHARE_ARN = re.compile(
    r"^arn:aws[a-z-]*:ram:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):resource-share/[0-9a-f-]{36}$"
)
OU_ARN = re.compile(
    r"^arn:aws[a-z-]*:organizations::(?P<account>\d{12}):ou/(?P<org>o-[a-z0-9]{10,32})/"
    r"ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"
)
#: A PrivateLink endpoint service's name: ``com.amazonaws.vpce.<region>.<service id>`` (PrivateLink
#: guide, "Create an endpoint service"; the service id is ``vpce-svc-`` and 17 hex digits).
ENDPOINT_SERVICE_NAME_PATTERN: Final = r"^com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]{17}$"
#: A stream's name is also its MoldUDP64 session: 10 ASCII characters at most (MoldUDP64 1.00,
#: the header's Session field), and a name as above (construct ids, export names).
STREAM_NAME_MAX = 10
TRANSIT_GATEWAY_ID = re.compile(TRANSIT_GATEWAY_ID_PATTERN)
ENDPOINT_SERVICE_NAME = re.compile(ENDPOINT_SERVICE_NAME_PATTERN)
DOMAIN_ID = re.compile(DOMAIN_ID_PATTERN)
OU_ID = re.compile(r"ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")

#: Plain words for the patterns above, used in error messages instead of the regex.
PATTERN_MEANINGS: Final = {
    NAME_PATTERN: "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
    OVERLAY_NAME_PATTERN: "must be 1-11 lowercase letters, digits or hyphens (the device mck-<name> "
    "has at most 15 characters), not starting or ending with a hyphen",
    WIREGUARD_KEY_PATTERN: "must be a WireGuard public key as `mcastkit overlay key` prints it (44 "
    "characters of base64 ending in =)",
    ACCOUNT_ID_PATTERN: 'must be a 12-digit AWS account id, quoted in YAML ("012345678901")',
    ORGANIZATION_ID_PATTERN: "must be an AWS Organizations id such as o-a1b2c3d4e5 "
    "(aws organizations describe-organization --query Organization.Id)",
    SECRET_ARN_PATTERN: "must be the complete ARN of a Secrets Manager secret, ending in the "
    "6-character suffix (aws secretsmanager describe-secret --secret-id NAME --query ARN)",
    TRANSIT_GATEWAY_ID_PATTERN: "must be a transit gateway id such as tgw-0123456789abcdef0",
    EMAIL_PATTERN: "must be an email address such as ops@example.com",
    HTTPS_URL_PATTERN: "must be an https:// URL such as https://events.example.com/hook (plain "
    "http would carry alarms in clear text)",
    IAM_ROLE_ARN_PATTERN: "must be an IAM role ARN such as arn:aws:iam::111111111111:role/platform-admin",
    ENDPOINT_SERVICE_NAME_PATTERN: "must be an endpoint service name such as "
    "com.amazonaws.vpce.eu-west-2.vpce-svc-0123456789abcdef0",
}

#: The port the relay serves ``/metrics`` and ``/healthz`` on in its ECS task.
RELAY_METRICS_PORT: Final = 9400

#: NFS, which EFS mount targets serve (the sequencer's journal).
NFS_PORT: Final = 2049

#: CloudFormation stack names: a letter first, then letters, digits and hyphens, 128 at most
#: (CloudFormation API reference, CreateStack ``StackName``).
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
STACK_NAME_MAX = 128

#: The provider's stacks in each region, in deploy order.
PROVIDER_STACK_KINDS: Final = ("network", "sharing", "compute", "eks")


def pascal(name: str) -> str:
    """Construct ids and output keys from config values: ``market-data`` -> ``MarketData``,
    ``10.20.0.0/24`` -> ``10200024``, ``ecr.dkr`` -> ``EcrDkr``.

    Logical ids of deployed resources derive from this spelling: changing it replaces them.
    """
    return "".join(part.capitalize() for part in re.split(r"[-./]", name))


def stack_name(project: str, region: str, kind: str) -> str:
    """A provider stack: ``venue-md-eu-west-2-network``."""
    return f"{project}-{region}-{kind}"


def kit_stack_name(project: str, customer: str, region: str) -> str:
    """The customer's receiver stack: ``venue-md-alpha-trading-eu-west-2-receiver``."""
    return f"{project}-{customer}-{region}-receiver"


def export_name(stack: str, output_key: str) -> str:
    """The export name of a provider stack's output (imported by name across stacks)."""
    return f"{stack}-{output_key}"


#: The network stack's output, and the customer stack's parameter, holding the transit gateway id.
TRANSIT_GATEWAY_ID_KEY: Final = "TransitGatewayId"


def domain_key(domain: str, attribute: str = "Id") -> str:
    """The network stack's output of a domain's id or ARN, and the customer stack's parameter of its
    id: ``market-data`` -> ``MarketDataDomainId``."""
    return f"{pascal(domain)}Domain{attribute}"


def subnet_parameter(domain: str, index: int) -> str:
    """The customer stack's parameter of the ``index``-th receiver subnet of ``domain``."""
    return f"{pascal(domain)}Subnet{index + 1}"


def stream_key(stream: str, attribute: str) -> str:
    """The network stack's output of a stream's endpoint service (``ServiceId``, ``ServiceName``), and
    the customer stack's parameter of its name: ``md-seq`` -> ``MdSeqEndpointServiceName``."""
    return f"{pascal(stream)}EndpointService{attribute}"


def endpoint_subnets_parameter(stream: str) -> str:
    """The customer stack's parameter of the subnets of a stream's interface endpoint."""
    return f"{pascal(stream)}EndpointSubnets"
