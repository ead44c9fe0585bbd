"""What CloudFormation does to each resource type on an update: the facts ``mcastkit plan`` reads.

``CREATE_ONLY`` lists each type's create-only properties (a change replaces the resource), as the
CloudFormation resource schemas give them (the copy cfn-lint ships; ``tests/test_plan.py`` checks
that this table matches it for every type the stacks make). Paths are below ``Properties``, with
``/`` between levels.
"""

from __future__ import annotations

from typing import Final

CREATE_ONLY: Final[dict[str, tuple[str, ...]]] = {
    "AWS::AutoScaling::AutoScalingGroup": ("InstanceId", "AutoScalingGroupName"),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::EC2::FlowLog": (
        "DeliverCrossAccountRole",
        "DeliverLogsPermissionArn",
        "LogGroupName",
        "LogDestination",
        "ResourceId",
        "TrafficType",
        "LogDestinationType",
        "ResourceType",
        "LogFormat",
        "MaxAggregationInterval",
        "DestinationOptions",
        "TagFieldSpecifications",
    ),
    "AWS::EC2::LaunchTemplate": ("LaunchTemplateName",),
    "AWS::EC2::NetworkAcl": ("VpcId",),
    "AWS::EC2::NetworkAclEntry": ("Egress", "RuleNumber", "NetworkAclId"),
    "AWS::EC2::Route": (
        "RouteTableId",
        "DestinationCidrBlock",
        "DestinationIpv6CidrBlock",
        "DestinationPrefixListId",
    ),
    "AWS::EC2::RouteTable": ("VpcId",),
    "AWS::EC2::SecurityGroup": ("GroupDescription", "GroupName", "VpcId"),
    "AWS::EC2::SecurityGroupEgress": (
        "IpProtocol",
        "DestinationSecurityGroupId",
        "ToPort",
        "CidrIp",
        "FromPort",
        "GroupId",
        "CidrIpv6",
        "DestinationPrefixListId",
    ),
    "AWS::EC2::SecurityGroupIngress": (
        "GroupName",
        "IpProtocol",
        "SourceSecurityGroupId",
        "SourcePrefixListId",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
        "FromPort",
        "GroupId",
        "CidrIpv6",
    ),
    "AWS::EC2::Subnet": (
        "VpcId",
        "AvailabilityZone",
        "AvailabilityZoneId",
        "CidrBlock",
        "OutpostArn",
        "Ipv6Native",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "Ipv6IpamPoolId",
        "Ipv6NetmaskLength",
    ),
    "AWS::EC2::SubnetNetworkAclAssociation": ("SubnetId", "NetworkAclId"),
    "AWS::EC2::SubnetRouteTableAssociation": ("SubnetId", "RouteTableId"),
    "AWS::EC2::TransitGateway": ("AmazonSideAsn", "MulticastSupport"),
    "AWS::EC2::TransitGatewayAttachment": ("TransitGatewayId", "VpcId"),
    "AWS::EC2::TransitGatewayMulticastDomain": ("TransitGatewayId",),
    "AWS::EC2::TransitGatewayMulticastDomainAssociation": (
        "TransitGatewayMulticastDomainId",
        "TransitGatewayAttachmentId",
        "SubnetId",
    ),
    "AWS::EC2::TransitGatewayMulticastGroupMember": (
        "TransitGatewayMulticastDomainId",
        "GroupIpAddress",
        "NetworkInterfaceId",
    ),
    "AWS::EC2::TransitGatewayMulticastGroupSource": (
        "TransitGatewayMulticastDomainId",
        "GroupIpAddress",
        "NetworkInterfaceId",
    ),
    "AWS::EC2::TransitGatewayVpcAttachment": ("TransitGatewayId", "SubnetIds", "VpcId"),
    "AWS::EC2::VPC": ("CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength", "VpcEncryptionControl"),
    "AWS::EC2::VPCGatewayAttachment": ("VpcId",),
    "AWS::EC2::VPCEndpoint": (
        "ServiceName",
        "VpcEndpointType",
        "VpcId",
        "ServiceNetworkArn",
        "ResourceConfigurationArn",
        "ServiceRegion",
        "DnsOptions/PrivateDnsPreference",
        "DnsOptions/PrivateDnsSpecifiedDomains",
    ),
    "AWS::EC2::VPCEndpointService": (),
    "AWS::EC2::VPCEndpointServicePermissions": ("ServiceId",),
    "AWS::ECS::CapacityProvider": ("AutoScalingGroupProvider/AutoScalingGroupArn", "Name", "ClusterName"),
    "AWS::ECS::Cluster": ("ClusterName",),
    "AWS::ECS::ClusterCapacityProviderAssociations": ("Cluster",),
    "AWS::ECS::Service": ("Cluster", "Role", "SchedulingStrategy", "ServiceName"),
    "AWS::ECS::TaskDefinition": (
        "Family",
        "ContainerDefinitions",
        "Cpu",
        "EnableFaultInjection",
        "ExecutionRoleArn",
        "InferenceAccelerators",
        "Memory",
        "NetworkMode",
        "PlacementConstraints",
        "ProxyConfiguration",
        "RequiresCompatibilities",
        "RuntimePlatform",
        "TaskRoleArn",
        "Volumes",
        "PidMode",
        "IpcMode",
        "EphemeralStorage",
    ),
    "AWS::EKS::AccessEntry": ("PrincipalArn", "ClusterName", "Type"),
    "AWS::EKS::Addon": ("ClusterName", "AddonName", "NamespaceConfig"),
    "AWS::EKS::Cluster": (
        "OutpostConfig",
        "EncryptionConfig",
        "KubernetesNetworkConfig/IpFamily",
        "KubernetesNetworkConfig/ServiceIpv4Cidr",
        "AccessConfig/BootstrapClusterCreatorAdminPermissions",
        "Name",
        "RoleArn",
        "BootstrapSelfManagedAddons",
    ),
    "AWS::EFS::AccessPoint": (
        "FileSystemId",
        "ClientToken",
        "PosixUser",
        "PosixUser/Uid",
        "PosixUser/Gid",
        "PosixUser/SecondaryGids",
        "RootDirectory",
        "RootDirectory/Path",
        "RootDirectory/CreationInfo",
        "RootDirectory/CreationInfo/OwnerUid",
        "RootDirectory/CreationInfo/OwnerGid",
        "RootDirectory/CreationInfo/Permissions",
    ),
    "AWS::EFS::FileSystem": ("AvailabilityZoneName", "Encrypted", "KmsKeyId", "PerformanceMode"),
    "AWS::EFS::MountTarget": ("IpAddress", "Ipv6Address", "IpAddressType", "SubnetId", "FileSystemId"),
    "AWS::ElasticLoadBalancingV2::Listener": ("LoadBalancerArn",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("Name", "Type", "Scheme"),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        "TargetType",
        "ProtocolVersion",
        "Port",
        "Name",
        "VpcId",
        "Protocol",
        "IpAddressType",
    ),
    "AWS::IAM::InstanceProfile": ("InstanceProfileName", "Path"),
    "AWS::IAM::Policy": (),
    "AWS::IAM::Role": ("Path", "RoleName"),
    "AWS::KMS::Key": (),
    "AWS::Lambda::Function": ("FunctionName", "PackageType", "TenancyConfig"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::RAM::ResourceShare": ("ResourceShareConfiguration/RetainSharingOnAccountLeaveOrganization",),
    "AWS::SNS::Subscription": ("Endpoint", "Protocol", "TopicArn"),
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::SNS::TopicPolicy": (),
    "AWS::SecretsManager::Secret": ("Name",),
}

#: Properties the schema lets change but the resource handler does not apply: EC2 has no API that
#: modifies a multicast domain's options, and the handler's update changes tags only (documented:
#: the Transit Gateway guide lists no modify call; the handler source updates tags). A change
#: deploys "successfully" and does nothing, so ``plan`` treats it as a replacement.
NOT_APPLIED_ON_UPDATE: Final[dict[str, tuple[str, ...]]] = {
    "AWS::EC2::TransitGatewayMulticastDomain": ("Options",),
}

#: Removed only when the config revokes every customer of it: not refused, reported as revoked.
REMOVED_BY_REVOCATION: Final = frozenset({"AWS::RAM::ResourceShare"})

#: Resources whose replacement or removal cuts customers off (or fails outright), so ``plan``
#: refuses it unless asked to allow it. A stream's journal (retained, but a replacement starts an
#: empty one: nothing sequenced before can be replayed), its load balancer and endpoint service (a
#: new service has a new name: every customer's interface endpoint must be made again) count too,
#: and so does the EKS cluster (its name is fixed, so a replacement fails on the name; and every
#: workload on it would go).
STATEFUL: Final = frozenset(
    {
        "AWS::EKS::Cluster",
        "AWS::EFS::FileSystem",
        "AWS::EC2::VPCEndpointService",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::EC2::TransitGateway",
        "AWS::EC2::TransitGatewayAttachment",
        "AWS::EC2::TransitGatewayVpcAttachment",
        "AWS::EC2::TransitGatewayMulticastDomain",
        "AWS::EC2::TransitGatewayMulticastDomainAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::RAM::ResourceShare",
    }
)
