"""What ``mcastkit doctor`` is asked to check, parsed once from the command line into typed values.

:meth:`DoctorOptions.parse` turns the command line's strings into options, raising a
:class:`~mcastkit.errors.BadInput` whose one line names the argument, the value, why it is
refused and what to write instead. :meth:`DoctorOptions.arguments` writes them back, for the
same checks run again inside a network namespace.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mcastkit.config.names import DOMAIN_ID, ENI_ID_PATTERN
from mcastkit.errors import BadInput
from mcastkit.net.addresses import AddressError, GroupPort, parse_group

#: The longest ``--listen`` (an hour): a capture is a diagnosis, not a monitor.
MAX_LISTEN_SECONDS = 3600.0
_ENI = re.compile(ENI_ID_PATTERN)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
#: What the kernel accepts as an interface name (dev_valid_name): 1-15 bytes, no '/', ':' or space.
_INTERFACE = re.compile(r"^[^/:\s]{1,15}$")


@dataclass(frozen=True)
class DoctorOptions:
    """The checks to run. Every field has the default the command line has.

    ``interface`` ``None``: the interface the kernel routes multicast by. ``listen`` 0: no
    capture. ``namespaces`` (or ``all_namespaces``): run the checks inside those network
    namespaces instead of this one.
    """

    interface: str | None = None
    groups: tuple[GroupPort, ...] = ()
    #: The senders' addresses: the route back to them (rp_filter) and the UDP rules they need.
    sources: tuple[ipaddress.IPv4Network, ...] = ()
    listen: float = 0.0
    aws: bool = False
    region: str | None = None
    eni: str | None = None
    domain: str | None = None
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False

    @classmethod
    def parse(
        cls,
        *,
        interface: str | None = None,
        groups: Sequence[str] = (),
        sources: Sequence[str] = (),
        listen: str | None = None,
        aws: bool = False,
        region: str | None = None,
        eni: str | None = None,
        domain: str | None = None,
        namespaces: Sequence[str] = (),
        all_namespaces: bool = False,
    ) -> DoctorOptions:
        """Options from the command line's strings; the first bad one raises :class:`BadInput`."""
        if interface is not None:
            _check_interface(interface)
        parsed_groups = tuple(dict.fromkeys(_group(value) for value in groups))
        parsed_sources = tuple(dict.fromkeys(_source(value) for value in sources))
        seconds = 0.0 if listen is None else _seconds(listen)
        _check_id("--eni", eni, _ENI, "an ENI id", "eni-0123456789abcdef0")
        _check_id(
            "--domain", domain, DOMAIN_ID, "a multicast domain id", "tgw-mcast-domain-0123456789abcdef0"
        )
        _check_id("--region", region, _REGION, "an AWS region", "eu-west-2")
        if not aws:
            for flag, value in (("--region", region), ("--eni", eni), ("--domain", domain)):
                if value is not None:
                    raise BadInput(f"{flag} {value}: only the AWS checks use it; add --aws")
        if namespaces and all_namespaces:
            raise BadInput(f"--netns {namespaces[0]} and --all-netns: choose one")
        for name in namespaces:
            if not name or "/" in name or name in (".", ".."):
                raise BadInput(f"--netns {name!r}: not a namespace name (no '/'); ip netns list shows them")
        return cls(
            interface=interface,
            groups=parsed_groups,
            sources=parsed_sources,
            listen=seconds,
            aws=aws,
            region=region,
            eni=eni,
            domain=domain,
            namespaces=tuple(dict.fromkeys(namespaces)),
            all_namespaces=all_namespaces,
        )

    def arguments(self) -> list[str]:
        """The ``mcastkit doctor`` arguments that ask for these checks, without the namespaces."""
        argv: list[str] = []
        if self.interface is not None:
            argv += ["--interface", self.interface]
        for group in self.groups:
            argv += ["--group", str(group)]
        for source in self.sources:
            argv += ["--source", str(source)]
        if self.listen:
            argv += ["--listen", f"{self.listen:g}"]
        if self.aws:
            argv.append("--aws")
            for flag, value in (("--region", self.region), ("--eni", self.eni), ("--domain", self.domain)):
                if value is not None:
                    argv += [flag, value]
        return argv


def _check_interface(name: str) -> None:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise BadInput(
            f"--interface {name}: give the interface's name (e.g. eth1), not its address: the kernel "
            f"keeps IGMP and rp_filter settings per name (ip -br address shows which one has {name})"
        )
    if not _INTERFACE.match(name) or name in ("all", "default", ".", ".."):
        raise BadInput(
            f"--interface {name!r}: not an interface name (1-15 characters, no '/', ':' or spaces); "
            "e.g. --interface eth1 (ip -br link lists them)"
        )


def _group(value: str) -> GroupPort:
    try:
        return parse_group(value, flag="--group")
    except AddressError as err:
        text = str(err)
        raise BadInput(text if "e.g." in text else f"{text}; e.g. --group 239.1.1.1:5000") from None


def _source(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        raise BadInput(
            f"--source {value!r}: not an IPv4 address or CIDR ({err}); e.g. --source 10.20.0.15 or "
            "--source 10.20.0.0/24"
        ) from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_LISTEN_SECONDS):
        raise BadInput(
            f"--listen {value!r}: not a number of seconds from 0 to {MAX_LISTEN_SECONDS:g}; "
            "e.g. --listen 10 (0: no capture)"
        )
    return seconds


def _check_id(flag: str, value: str | None, pattern: re.Pattern[str], what: str, example: str) -> None:
    if value is not None and not pattern.match(value):
        raise BadInput(f"{flag} {value!r}: not {what}; e.g. {flag} {example}")
