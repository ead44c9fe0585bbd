"""What every mcastkit stack shares: a region's pinned availability zones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from constructs import Construct


class RegionStack(cdk.Stack):
    """A stack whose availability zones come from the config, never from a lookup.

    With an explicit env, ``Stack.availability_zones`` would ask the account (and fail
    without credentials); constructs such as VPC endpoints read it.
    """

    def __init__(
        self, scope: Construct, id_: str, *, availability_zones: Sequence[str], **kwargs: Any
    ) -> None:
        self._pinned_zones = list(availability_zones)
        super().__init__(scope, id_, **kwargs)

    @property
    def availability_zones(self) -> list[str]:
        return list(self._pinned_zones)
