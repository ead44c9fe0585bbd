"""Unicast delivery and a relay tree through the lab: the datacenter source's group crosses the
routed link to a middle egress, which delivers it by unicast to one host and serves a leaf egress,
which emits it as multicast onto the segment for a receiver that joined.

    src --lan-- [dc] ingress ==routed== [egress] middle egress --unicast--> rx1 (a plain UDP socket)
                                              \\--serve--> [rx3] leaf egress --multicast--> rx2 (joined)
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netns_support import needs_lab

from mcastkit.lab import netns
from mcastkit.lab.session import Lab, relay_available
from mcastkit.lab.topology import EGRESS_ADDRESS, INGRESS_ADDRESS, SOURCE_ADDRESS

GROUP = "239.1.5.1:5051"
UNICAST_PORT = 6051
RELAY_PORT, SERVE_PORT, LEAF_METRICS = 7450, 7451, 9151
COUNT = 5000
pytestmark = [pytest.mark.netns, needs_lab, pytest.mark.timeout(180)]

_UNICAST_RECEIVER = """
import json, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.settimeout(0.5)
got, deadline, last = [], time.monotonic() + float(sys.argv[3]), None
while time.monotonic() < deadline:
    try:
        got.append(len(sock.recv(9000)))
        last = time.monotonic()
    except socket.timeout:
        if last and time.monotonic() - last > 2:
            break
print(json.dumps({"datagrams": len(got)}))
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    if not relay_available():
        pytest.skip("`mcastkit relay` is not available in this installation")
    lab = Lab(f"mckt{uuid.uuid4().hex[:6]}")
    run = tmp_path_factory.mktemp("delivery")
    try:
        lab.up(members=2, relay=False)
        yield lab, run
    finally:
        lab.down()


def _wait_for(condition: Any, what: str, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; {log.name}:\n{log.read_text()[-2000:]}")


def _listening(namespace: str, port: int) -> bool:
    return f":{port} " in netns.in_namespace(namespace, ["ss", "-ltnH"], check=False)


def test_unicast_delivery_and_a_leaf_egress_carry_the_stream_whole(lab: tuple[Lab, Path]) -> None:
    lab_, run = lab
    layout = lab_.state().layout
    rx1, rx2, rx3 = layout.receivers
    secret = run / "secret"
    secret.write_text(secrets.token_hex(32) + "\n")
    secret.chmod(0o600)
    common = ["--secret-file", str(secret), "--heartbeat", "0.5"]
    pids: list[int] = []
    try:
        pids.append(netns.spawn(layout.ns("egress"), netns.mcastkit_command(
            "relay", "egress", "--listen", f"{EGRESS_ADDRESS}:{RELAY_PORT}", "--interface", EGRESS_ADDRESS,
            "--ttl", "4", "--allow", GROUP, "--unicast", f"{GROUP}={rx1.address}:{UNICAST_PORT}",
            "--max-peers", "1", "--serve", f"{EGRESS_ADDRESS}:{SERVE_PORT}", *common,
        ), log=run / "middle.log"))  # fmt: skip
        _wait_for(
            lambda: _listening(layout.ns("egress"), SERVE_PORT),
            "the middle egress to serve",
            run / "middle.log",
        )
        pids.append(netns.spawn(rx3.namespace, netns.mcastkit_command(
            "relay", "egress", "--connect", f"{EGRESS_ADDRESS}:{SERVE_PORT}", "--interface", rx3.address,
            "--ttl", "4", "--allow", GROUP, "--metrics", f"127.0.0.1:{LEAF_METRICS}", *common,
        ), log=run / "leaf.log"))  # fmt: skip
        pids.append(netns.spawn(layout.ns("dc"), netns.mcastkit_command(
            "relay", "ingress", "--group", GROUP, "--interface", INGRESS_ADDRESS,
            "--connect", f"{EGRESS_ADDRESS}:{RELAY_PORT}", *common,
        ), log=run / "ingress.log"))  # fmt: skip
        _wait_for(
            lambda: "authenticated" in (run / "ingress.log").read_text(),
            "the ingress link",
            run / "ingress.log",
        )
        _wait_for(
            lambda: "authenticated" in (run / "leaf.log").read_text(), "the leaf's link", run / "leaf.log"
        )
        time.sleep(max(0.0, lab_.state().snooping_from - time.time()))

        unicast = netns.spawn(
            rx1.namespace,
            ["python3", "-c", _UNICAST_RECEIVER, rx1.address, str(UNICAST_PORT), "40"],
            log=run / "unicast.out",
        )
        multicast = netns.spawn(rx2.namespace, netns.mcastkit_command(
            "probe", "recv", "--group", GROUP, "--interface", rx2.address, "--count", str(COUNT),
            "--timeout", "40", "--idle", "3", "--json",
        ), log=run / "multicast.out")  # fmt: skip
        pids += [unicast, multicast]
        time.sleep(2)  # the receivers bind and join; the bridge snoops rx2's report
        sent = netns.in_namespace(layout.ns("src"), netns.mcastkit_command(
            "probe", "send", "--group", GROUP, "--interface", SOURCE_ADDRESS, "--rate", "5000",
            "--count", str(COUNT), "--ttl", "1", "--json",
        ), timeout=60)  # fmt: skip
        assert json.loads(sent.strip().splitlines()[-1])["sent"] == COUNT
        netns.wait_exit([unicast, multicast], 45)
        scrape = "import urllib.request, sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
        url = f"http://127.0.0.1:{LEAF_METRICS}/metrics"
        leaf_metrics = netns.in_namespace(rx3.namespace, ["python3", "-c", scrape, url])
    finally:
        netns.stop(pids)
    assert json.loads((run / "unicast.out").read_text().strip().splitlines()[-1]) == {"datagrams": COUNT}
    report = json.loads((run / "multicast.out").read_text().strip().splitlines()[-1])
    assert (report["unique"], report["lost"], report["duplicates"]) == (COUNT, 0, 0), report
    # The leaf counted gaps against the ingress's own numbering: none.
    gaps = [line for line in leaf_metrics.splitlines() if line.startswith("mcastkit_relay_gaps_total{")]
    assert gaps and all(line.endswith(" 0.0") for line in gaps), gaps
