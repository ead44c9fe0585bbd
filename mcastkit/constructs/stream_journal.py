"""A sequenced stream's journal: an encrypted EFS file system that outlives every task.

Why EFS and not EBS. The journal must survive the sequencer's task: a replay answers for what was
sequenced before the task that serves it started, and ECS replaces the task on every deployment,
on a host replacement (a new AMI at any deploy) and after a failure. ECS-managed EBS volumes do
not: a service creates one volume per task and, by default, deletes it when the task stops
(ECS API reference, ``ServiceVolumeConfiguration`` and ``TaskManagedEBSVolumeTerminationPolicy``;
the ECS developer guide's storage options call them "ephemeral when attached to a task maintained
by a service"). Kept with ``deleteOnTermination: false``, the old volume is left in the account
but the next task still gets a new one. An EBS volume of the host (or a bind mount) ties the
journal to one instance in one zone, and the hosts are replaced in rolling updates. EFS is
regional, reachable from every zone the sequencer may be placed in, and its durability is the
service's. The cost is latency: every synchronous write is a round trip to the mount target, so
``fsync: always`` bounds the rate (``interval``, the default, batches them).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from constructs import Construct

from mcastkit.config.names import pascal

#: The uid:gid every tools container runs as (``TOOLS_USER`` of the Dockerfile): the access point
#: makes every file the sequencer writes this owner's, whatever the client says.
JOURNAL_UID = 10001
JOURNAL_GID = 10001
#: The access point's root inside the file system (created with the owner above on first mount).
JOURNAL_PATH = "/journal"


class StreamJournal(Construct):
    """An EFS file system for one stream's journal, an access point, and a mount target per zone.

    * Encrypted at rest (the EFS service key); the file system policy denies every client action
      without TLS, and, being a policy of its own, replaces EFS's default one that lets any
      client with network access mount (EFS user guide, "Using IAM to control access to file
      systems"): a client needs an IAM identity allowed to mount it, through the access point
      (:attr:`access_point`, which the sequencer's task role is conditioned on).
    * The access point runs every client as ``JOURNAL_UID``:``JOURNAL_GID`` in ``JOURNAL_PATH``,
      created 0750 for that owner.
    * One mount target per zone of ``subnets``, with logical ids named after the subnet's CIDR, so
      reordering the subnets replaces none (a mount target's subnet is create-only, and a second
      one in a zone is refused).
    * Retained when removed from the stack or replaced, with automatic backups (AWS Backup's
      default plan), general-purpose performance mode (the lowest latency) and elastic throughput.

    Args:
        vpc: the VPC of the mount targets.
        subnets: where the sequencer may run (its domain's subnets, made with literal CIDRs); the
            first of each zone gets a mount target.
        stream: the stream's name, for descriptions and tags.

    Attributes:
        file_system, access_point, security_group (no rules inbound: the sequencer's construct
        admits NFS from its own security group), mount_targets (by subnet CIDR).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        stream: str,
    ) -> None:
        super().__init__(scope, id_)
        if not subnets:
            raise ValueError(f"no subnet given for the journal of stream {stream!r}")
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"mcastkit journal of stream {stream}: NFS from its sequencer only",
            allow_all_outbound=False,
        )
        self.file_system = efs.CfnFileSystem(
            self,
            "FileSystem",
            encrypted=True,
            performance_mode="generalPurpose",
            throughput_mode="elastic",
            backup_policy=efs.CfnFileSystem.BackupPolicyProperty(status="ENABLED"),
            file_system_policy={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyWithoutTls",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
            file_system_tags=[efs.CfnFileSystem.ElasticFileSystemTagProperty(key="Name", value=stream)],
        )
        self.file_system.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.access_point = efs.CfnAccessPoint(
            self,
            "AccessPoint",
            file_system_id=self.file_system.attr_file_system_id,
            posix_user=efs.CfnAccessPoint.PosixUserProperty(uid=str(JOURNAL_UID), gid=str(JOURNAL_GID)),
            root_directory=efs.CfnAccessPoint.RootDirectoryProperty(
                path=JOURNAL_PATH,
                creation_info=efs.CfnAccessPoint.CreationInfoProperty(
                    owner_uid=str(JOURNAL_UID), owner_gid=str(JOURNAL_GID), permissions="750"
                ),
            ),
        )
        self.access_point.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.mount_targets: dict[str, efs.CfnMountTarget] = {}
        zones: set[str] = set()
        for subnet in subnets:
            if subnet.availability_zone in zones:
                continue
            zones.add(subnet.availability_zone)
            cidr = subnet.ipv4_cidr_block  # a literal: the subnets are the config's
            self.mount_targets[cidr] = efs.CfnMountTarget(
                self,
                f"MountTarget{pascal(cidr)}",
                file_system_id=self.file_system.attr_file_system_id,
                subnet_id=subnet.subnet_id,
                security_groups=[self.security_group.security_group_id],
            )
        self.file_system_id: str = self.file_system.attr_file_system_id
        self.file_system_arn: str = self.file_system.attr_arn
        self.access_point_id: str = self.access_point.attr_access_point_id
        self.access_point_arn: str = self.access_point.attr_arn
