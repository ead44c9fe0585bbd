"""The instance metadata service (IMDSv2): which ENI an interface's MAC belongs to.

The endpoint is ``$MCASTKIT_IMDS_ENDPOINT`` (default http://169.254.169.254), as for the EKS
pods' IPAM plugin. That plugin must stay one standard-library file for the nodes' Python 3.9,
so it keeps its own client; this one asks fewer questions and gives up sooner: a host that is
not on EC2, or a pod behind the hop limit of 1 that mcastkit's launch templates set, gets no
answer, and the doctor then looks the MAC up through the EC2 API instead.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field

DEFAULT_ENDPOINT = "http://169.254.169.254"
ENDPOINT_VARIABLE = "MCASTKIT_IMDS_ENDPOINT"
TOKEN_TTL_SECONDS = "60"
#: One short try per request: the metadata service answers in milliseconds on EC2.
REQUEST_TIMEOUT = 1.0


class MetadataUnavailable(Exception):
    """The metadata service did not answer; ``str()`` says what happened."""


@dataclass
class InstanceMetadata:
    endpoint: str = field(default_factory=lambda: os.environ.get(ENDPOINT_VARIABLE) or DEFAULT_ENDPOINT)
    timeout: float = REQUEST_TIMEOUT
    _token: str | None = field(default=None, repr=False)

    def _request(self, method: str, path: str, headers: dict[str, str]) -> str | None:
        url = self.endpoint.rstrip("/") + path
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return str(response.read().decode())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise MetadataUnavailable(f"{self.endpoint} refused {method} {path} (HTTP {err.code})") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise MetadataUnavailable(f"{self.endpoint} did not answer ({reason})") from None

    def get(self, path: str) -> str | None:
        """``/latest/meta-data/<path>``; ``None`` when the service has no such entry."""
        if self._token is None:
            token = self._request(
                "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL_SECONDS}
            )
            if not token:
                raise MetadataUnavailable(f"{self.endpoint} gave no IMDSv2 token")
            self._token = token
        return self._request("GET", f"/latest/meta-data/{path}", {"X-aws-ec2-metadata-token": self._token})

    def eni_of(self, mac: str) -> str | None:
        """The ENI id of the interface with hardware address ``mac`` on this instance, if it is one."""
        text = self.get(f"network/interfaces/macs/{mac}/interface-id")
        return text.strip() if text and text.strip() else None
