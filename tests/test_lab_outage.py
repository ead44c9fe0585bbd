"""A Direct Connect flap in the lab: the relays resume and the receivers miss nothing."""

from __future__ import annotations

import uuid

import pytest
from netns_support import needs_lab

from mcastkit.lab.netns import LabError
from mcastkit.lab.session import Lab, relay_available

COUNT, RATE, OUTAGE = 100_000, 10_000, 5.0


@pytest.mark.netns
@needs_lab
@pytest.mark.timeout(180)
def test_a_five_second_outage_between_the_relays_loses_nothing_at_the_receiver() -> None:
    if not relay_available():
        pytest.skip("`mcastkit relay` is not available in this installation")
    lab = Lab(f"mcko{uuid.uuid4().hex[:6]}")
    try:
        lab.up(members=1)
        # 10 s at 10k msg/s; the routed link drops everything from 2 s to 7 s in.
        report = lab.run(path="relay", count=COUNT, rate=RATE, outage=OUTAGE)
        with pytest.raises(LabError, match="needs --path relay"):
            lab.run(path="direct", count=1, rate=1, outage=OUTAGE)
    finally:
        lab.down()
    (member,) = report.members
    received = member.report
    assert received is not None, member.problem
    assert (received.unique, received.lost, received.duplicates) == (COUNT, 0, 0)
    relay = report.relay or {}
    # The link really went down (the relays found it dead), and what it lost came back by replay.
    assert relay.get("ingress.disconnects", 0) >= 1 and relay.get("egress.disconnects", 0) >= 1, relay
    assert relay.get("ingress.resumes") == 1 and relay.get("egress.resumes") == 1, relay
    assert relay.get("ingress.replayed", 0) >= OUTAGE * RATE, relay
    assert relay.get("ingress.unrecoverable", 0) == 0 and relay.get("egress.gaps", 0) == 0, relay
    assert relay.get("egress.datagrams_out") == COUNT, relay
