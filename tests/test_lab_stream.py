"""The lab's stream path: a sequenced stream across the TGW stand-in, loss induced on the way
to the receivers, everything recovered; the bus logger writes every message."""

from __future__ import annotations

import shutil
import uuid

import pytest
from netns_support import needs_lab

from mcastkit.lab.netns import LabError
from mcastkit.lab.session import Lab, relay_available
from mcastkit.lab.stream import run_stream
from mcastkit.probe.wire import SizeRange

COUNT = 20_000


@pytest.mark.netns
@needs_lab
@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (Debian: iptables)")
@pytest.mark.timeout(300)
def test_the_stream_path_recovers_induced_loss_by_either_way() -> None:
    if not relay_available():
        pytest.skip("`mcastkit relay` is not available in this installation")
    lab = Lab(f"mcks{uuid.uuid4().hex[:6]}")
    try:
        with pytest.raises(LabError, match="not up"):
            run_stream(lab, count=1, rate=1, size=SizeRange(64, 64))
        lab.up(members=2)
        through_relays = run_stream(
            lab, count=COUNT, rate=10_000, size=SizeRange(64, 512), loss=0.02, logger=True
        )
        by_replay = run_stream(
            lab, count=COUNT, rate=10_000, size=SizeRange(64, 512), loss=0.02, source="vpc", recovery="replay"
        )
        with pytest.raises(LabError, match="nothing would receive"):
            run_stream(lab, count=1, rate=1, size=SizeRange(64, 64), receivers=0)
    finally:
        lab.down()
    for report in (through_relays, by_replay):
        assert report.ok(), report.to_dict()
        [(name, received)] = report.receivers.items()
        assert name == "rx2"
        assert (received["delivered"], received["unrecovered"], received["duplicates"]) == (COUNT, 0, 0)
        # The rule really dropped packets, and what it dropped was recovered.
        assert report.dropped["rx2"] > 20 and received["recovered"] >= report.dropped["rx2"]
        assert report.sequencer["messages"] == COUNT
    assert through_relays.sequencer["retransmit"]["messages"] >= through_relays.receivers["rx2"]["recovered"]
    assert by_replay.sequencer["replay"]["logins"] >= 1
    assert through_relays.logger is not None
    assert through_relays.logger["delivered"] == COUNT and through_relays.logger["lines"] == COUNT
