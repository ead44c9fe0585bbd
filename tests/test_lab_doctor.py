"""`mcastkit doctor` in the lab: each fault the lab can be built with (`lab up --fault`) stops or
endangers delivery, and the doctor, run in the host's namespace, names it and nothing else.

One lab: the first receiver with IGMPv3 and strict rp_filter (its route back to the egress relay
leaves by another interface), the egress relay emitting with TTL 1, the second receiver healthy,
the third never joining.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from netns_support import needs_lab

from mcastkit.lab.faults import Fault
from mcastkit.lab.session import DEFAULT_GROUP, Lab, StreamReport, relay_available
from mcastkit.lab.topology import EGRESS_ADDRESS, joined_locally

GROUP = str(DEFAULT_GROUP)
pytestmark = [pytest.mark.netns, needs_lab, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, StreamReport]]:
    if not relay_available():
        pytest.skip("`mcastkit relay` is not available in this installation")
    lab = Lab(f"mckd{uuid.uuid4().hex[:6]}")
    try:
        lab.up(members=2, faults={Fault.IGMPV3, Fault.RP_FILTER, Fault.TTL1})
        report = lab.run(path="relay", count=2000, rate=10_000)
        yield lab, report
    finally:
        lab.down()


def _doctor(namespace: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "mcastkit", "doctor", "--netns", namespace, "--interface", "eth0",
        "--group", GROUP, "--json", *extra,
    ]  # fmt: skip


def _diagnose(namespace: str, *extra: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(_doctor(namespace, *extra), capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _problems(diagnosis: dict[str, Any]) -> dict[str, str]:
    return {f["check"]: f["message"] for f in diagnosis["findings"] if f["severity"] == "problem"}


def _joined_receiver(lab: Lab, index: int) -> subprocess.Popen[str]:
    """A passive receiver joined in the ``index``-th receiver's host (as its application would be)."""
    receiver = lab.state().layout.receivers[index]
    process = subprocess.Popen(
        ["ip", "netns", "exec", receiver.namespace, sys.executable, "-m", "mcastkit", "probe", "recv",
         "--passive", "--group", GROUP, "--interface", receiver.address, "--timeout", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not joined_locally(receiver.namespace, DEFAULT_GROUP.group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert joined_locally(receiver.namespace, DEFAULT_GROUP.group)
    return process


def _diagnosed_while_joined(lab: Lab, index: int) -> tuple[int, dict[str, Any]]:
    """The doctor's verdict on the ``index``-th receiver's host while an application there is joined."""
    receiver = _joined_receiver(lab, index)
    try:
        return _diagnose(lab.state().layout.receivers[index].namespace, "--source", EGRESS_ADDRESS)
    finally:
        receiver.kill()
        receiver.wait()


def test_the_faults_really_stop_delivery_to_the_broken_receiver_only(lab: tuple[Lab, StreamReport]) -> None:
    _, report = lab
    by_name = {member.name: member for member in report.members}
    broken, healthy = by_name["rx1"].report, by_name["rx2"].report
    assert broken is not None and healthy is not None
    # Strict rp_filter drops every datagram of the relay; the healthy member misses none.
    assert (broken.unique, healthy.unique, healthy.lost) == (0, 2000, 0)


def test_the_broken_receiver_is_diagnosed_with_igmpv3_and_rp_filter(lab: tuple[Lab, StreamReport]) -> None:
    status, diagnosis = _diagnosed_while_joined(lab[0], 0)
    problems = _problems(diagnosis)
    assert status == 1 and set(problems) == {"igmp-version", "rp-filter"}, diagnosis
    assert "IGMPv3 is in effect" in problems["igmp-version"]
    assert f"the route back leaves by {'side0'}" in problems["rp-filter"]


def test_the_healthy_receiver_with_a_member_socket_has_no_problem(lab: tuple[Lab, StreamReport]) -> None:
    status, diagnosis = _diagnosed_while_joined(lab[0], 1)
    assert status == 0 and _problems(diagnosis) == {}, diagnosis
    checks = {f["check"] for f in diagnosis["findings"]}
    assert {"igmp-version", "igmp-membership", "route", "rp-filter"} <= checks


def test_a_host_where_nothing_joined_is_told_so(lab: tuple[Lab, StreamReport]) -> None:
    lab_, _ = lab
    status, diagnosis = _diagnose(lab_.state().layout.receivers[2].namespace)
    problems = _problems(diagnosis)
    assert status == 1 and set(problems) == {"igmp-membership"}, diagnosis
    assert "no socket on this host joined 239.1.1.1 on eth0" in problems["igmp-membership"]


def test_the_egress_relays_ttl_1_is_seen_on_the_wire(lab: tuple[Lab, StreamReport]) -> None:
    lab_, _ = lab
    doctor = subprocess.Popen(
        _doctor(lab_.state().layout.ns("egress"), "--listen", "4"), stdout=subprocess.PIPE, text=True
    )
    time.sleep(1)  # the capture is open before the stream starts
    # In a process of its own: the lab reaps its children, which would take the doctor's status.
    run = [sys.executable, "-m", "mcastkit", "lab", "run", "--name", lab_.name, "--count", "20000"]
    subprocess.run(run, capture_output=True, timeout=120)  # exits 1: the first receiver gets nothing
    out, _ = doctor.communicate(timeout=60)
    diagnosis = json.loads(out)
    problems = [f for f in diagnosis["findings"] if f["severity"] == "problem" and f["check"] == "capture"]
    assert doctor.returncode == 1 and problems, diagnosis
    assert any("TTL" in f["message"] and GROUP.split(":")[0] in f["subject"] for f in problems), problems
