"""Who may connect to a stream's replay endpoint service: exactly the entitled accounts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config.names import ACCOUNT_ID_PATTERN


class ReplayAccess(Construct):
    """The ``AWS::EC2::VPCEndpointServicePermissions`` of one endpoint service.

    The principals are exactly those given, as ``arn:<partition>:iam::<account>:root``: an account
    removed from the list may create no new endpoint (one already connected stays until the
    provider rejects it; see :class:`mcastkit.constructs.replay_endpoint.ReplayEndpoint`). A
    resource of its own, apart from the endpoint service, so that adding or removing a customer
    updates this and nothing else (its only create-only property is the service id).

    Args:
        service_id: the endpoint service (``vpce-svc-...``; a token is fine).
        accounts: 12-digit account ids; at least one, no repeats. PrivateLink allows accounts, IAM
            roles and users, not OUs (the config refuses an OU entitled to a stream).

    Attributes:
        permissions: the resource.
    """

    def __init__(self, scope: Construct, id_: str, *, service_id: str, accounts: Sequence[str]) -> None:
        super().__init__(scope, id_)
        if not accounts:
            raise ValueError(f"{id_}: no accounts; create no permissions for a stream nobody receives")
        if len(set(accounts)) != len(accounts):
            raise ValueError(f"{id_}: repeated accounts {sorted(accounts)}")
        strangers = [a for a in accounts if not re.fullmatch(ACCOUNT_ID_PATTERN, a)]
        if strangers:
            raise ValueError(
                f"{id_}: {strangers} are not 12-digit account ids (PrivateLink has no OU principal)"
            )
        stack = Stack.of(self)
        self.permissions = ec2.CfnVPCEndpointServicePermissions(
            self,
            "Permissions",
            service_id=service_id,
            allowed_principals=[
                stack.format_arn(service="iam", region="", account=account, resource="root")
                for account in accounts
            ],
        )
