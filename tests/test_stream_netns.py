"""The sequenced stream for real, across two network namespaces: loss recovered, tail loss
seen through heartbeats, a sequencer restarted mid-stream, a late joiner replayed, storms cut.

::

    [seq] 10.206.0.1  probe send -> sequencer -> MoldUDP64 --veth--> [rcv] 10.206.0.2 stream recv
                      retransmit :17002, replay :17001 <-- re-request / replay --

Loss is iptables ``statistic`` in the receiving namespace (or the sending one, so that every
receiver misses the same packets). Each test's journal is new, so a receiver under loss starts
``--from 1``: without it, it would start at the first packet that got through.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netns_support import needs_netns, new_namespace

pytestmark = [
    needs_netns,
    pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (Debian: iptables)"),
    pytest.mark.timeout(300),
]

SEQ_ADDRESS, RCV_ADDRESS = "10.206.0.1", "10.206.0.2"
RAW, OUT = "239.206.1.1:6001", "239.206.1.2:6002"
RETRANSMIT, REPLAY = f"{SEQ_ADDRESS}:17002", f"{SEQ_ADDRESS}:17001"


class Pair:
    def __init__(self, seq: str, rcv: str, journal: Path) -> None:
        self.seq, self.rcv, self.journal = seq, rcv, journal
        self.sequencer: subprocess.Popen[str] | None = None

    def mcastkit(self, namespace: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "mcastkit", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start_sequencer(self) -> None:
        self.sequencer = self.mcastkit(
            self.seq,
            "stream",
            "sequencer",
            "--in",
            RAW,
            "--interface",
            SEQ_ADDRESS,
            "--out",
            OUT,
            "--session",
            "NETNS",
            "--journal",
            str(self.journal),
            "--retransmit",
            RETRANSMIT,
            "--replay",
            REPLAY,
            "--packet-bytes",
            "1472",
            "--ttl",
            "1",
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            listening = subprocess.run(
                ["ip", "netns", "exec", self.seq, "ss", "-Htln", "sport = :17001"],
                capture_output=True,
                text=True,
            ).stdout
            if listening.strip():
                return
            assert self.sequencer.poll() is None, self.sequencer.communicate()[1]
            time.sleep(0.05)
        raise AssertionError("the sequencer did not start listening")

    def stop_sequencer(self, signum: int = signal.SIGTERM) -> dict[str, Any]:
        assert self.sequencer is not None
        self.sequencer.send_signal(signum)
        _, err = self.sequencer.communicate(timeout=30)
        self.sequencer = None
        stats = [line.split(" stopped: ", 1)[1] for line in err.splitlines() if " stopped: " in line]
        return json.loads(stats[-1]) if stats else {}

    def receive(self, *args: str, namespace: str | None = None) -> subprocess.Popen[str]:
        return self.mcastkit(
            namespace or self.rcv,
            "stream",
            "recv",
            "--group",
            OUT,
            "--interface",
            RCV_ADDRESS,
            "--timeout",
            "60",
            "--json",
            *args,
        )

    def send(self, count: int, rate: int = 10_000, size: str = "64-512") -> None:
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.seq,
                sys.executable,
                "-m",
                "mcastkit",
                "probe",
                "send",
                "--group",
                RAW,
                "--interface",
                SEQ_ADDRESS,
                "--rate",
                str(rate),
                "--count",
                str(count),
                "--size",
                size,
                "--ttl",
                "1",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def drop(self, namespace: str, chain: str, share: float, action: str = "-A") -> None:
        group, port = OUT.split(":")
        rule = [chain, "-p", "udp", "-d", group, "--dport", port, "-m", "statistic", "--mode", "random",
                "--probability", str(share), "-j", "DROP"]  # fmt: skip
        subprocess.run(["ip", "netns", "exec", namespace, "iptables", action, *rule], check=True)


def report(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.startswith("{")]
    return process.returncode, (json.loads(lines[-1]) if lines else {}), out + err


def joined(namespace: str) -> None:
    """Wait until a receiver's socket holds the group (the veth needs no snooping)."""
    time.sleep(0.5)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with new_namespace("sseq") as seq, new_namespace("srcv") as rcv:
        subprocess.run(
            ["ip", "-n", seq, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", rcv],
            check=True,
        )
        for namespace, device, address in ((seq, "v0", SEQ_ADDRESS), (rcv, "v1", RCV_ADDRESS)):
            subprocess.run(
                ["ip", "-n", namespace, "address", "add", f"{address}/24", "dev", device], check=True
            )
            subprocess.run(["ip", "-n", namespace, "link", "set", device, "up"], check=True)
            subprocess.run(["ip", "-n", namespace, "route", "add", "224.0.0.0/4", "dev", device], check=True)
        pair = Pair(seq, rcv, tmp_path / "journal")
        try:
            yield pair
        finally:
            if pair.sequencer is not None:
                pair.sequencer.kill()
                pair.sequencer.communicate()


@pytest.mark.parametrize("recovery", ["--retransmit", "--replay"])
def test_two_percent_loss_is_recovered_in_order(pair: Pair, recovery: str) -> None:
    pair.start_sequencer()
    pair.drop(pair.rcv, "INPUT", 0.02)
    receiver = pair.receive(
        recovery,
        RETRANSMIT if recovery == "--retransmit" else REPLAY,
        "--from",
        "1",
        "--count",
        "30000",
        "--quiet",
    )
    joined(pair.rcv)
    pair.send(30_000, rate=15_000)
    status, result, text = report(receiver)
    assert status == 0, text
    assert (result["delivered"], result["unrecovered"], result["duplicates"]) == (30_000, 0, 0)
    assert result["recovered"] > 100 and result["gaps"] > 20
    assert result["gap_fill_us"]["p99"] is not None
    assert result["latency_recovered_us"]["p99"] >= result["latency_us"]["p50"]
    stats = pair.stop_sequencer()
    if recovery == "--retransmit":
        assert stats["retransmit"]["messages"] >= result["recovered"]
    else:
        assert stats["replay"]["logins"] >= 1


def test_messages_arrive_in_order_with_their_bytes(pair: Pair) -> None:
    pair.start_sequencer()
    pair.drop(pair.rcv, "INPUT", 0.05)
    receiver = pair.receive("--retransmit", RETRANSMIT, "--from", "1", "--count", "3000")
    joined(pair.rcv)
    pair.send(3000, rate=5000, size="64")
    status, _, text = report(receiver)
    assert status == 0, text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"seq"')]
    assert [line["seq"] for line in lines] == list(range(1, 3001))
    # The payload is the probe datagram: its own sequence number counts up with the stream's.
    probe_numbers = [int.from_bytes(base64.b64decode(line["data"])[8:16], "big") for line in lines]
    assert probe_numbers == sorted(probe_numbers) and len(set(probe_numbers)) == 3000


def test_tail_loss_is_found_through_heartbeats(pair: Pair) -> None:
    pair.start_sequencer()
    receiver = pair.receive("--retransmit", RETRANSMIT, "--count", "2000", "--quiet")
    joined(pair.rcv)
    pair.send(1500)
    pair.drop(pair.rcv, "INPUT", 1.0)  # the last 500 never arrive, and nothing follows them
    pair.send(500)
    pair.drop(pair.rcv, "INPUT", 1.0, action="-D")
    status, result, text = report(receiver)
    assert status == 0, text
    assert (result["delivered"], result["recovered"], result["unrecovered"]) == (2000, 500, 0)


def test_a_sequencer_restarted_mid_stream_continues_the_sequence(pair: Pair) -> None:
    pair.start_sequencer()
    receiver = pair.receive("--retransmit", RETRANSMIT, "--count", "4000")
    joined(pair.rcv)
    pair.send(2000)
    first = pair.stop_sequencer(signal.SIGKILL)  # no clean shutdown
    assert first == {}
    pair.start_sequencer()
    pair.send(2000)
    status, _, text = report(receiver)
    assert status == 0, text
    numbers = [json.loads(line)["seq"] for line in text.splitlines() if line.startswith('{"seq"')]
    assert numbers == list(range(1, 4001))
    stats = pair.stop_sequencer()
    assert stats["next_sequence"] == 4001 and stats["messages"] == 2000


def test_a_late_joiner_replays_from_any_number_then_follows_live(pair: Pair) -> None:
    pair.start_sequencer()
    pair.send(5000, rate=20_000)
    late = pair.receive("--replay", REPLAY, "--from", "1234", "--count", "4767")  # to 6000
    joined(pair.rcv)
    pair.send(1000)
    status, result, text = report(late)
    assert status == 0, text
    # Exactly once, in order: where the replay and the group overlap, the second copy is dropped.
    numbers = [json.loads(line)["seq"] for line in text.splitlines() if line.startswith('{"seq"')]
    assert numbers == list(range(1234, 6001))
    assert (result["delivered"], result["unrecovered"]) == (4767, 0)
    assert result["recovered"] >= 5001 - 1234 and result["received"] <= 1000


def test_a_late_joiner_by_re_request(pair: Pair) -> None:
    pair.start_sequencer()
    pair.send(3000, rate=20_000)
    late = pair.receive("--retransmit", RETRANSMIT, "--from", "100", "--count", "3401", "--quiet")  # to 3500
    joined(pair.rcv)
    pair.send(500)
    status, result, text = report(late)
    assert status == 0, text
    assert (result["delivered"], result["unrecovered"]) == (3401, 0)


def test_many_receivers_missing_the_same_packets_do_not_storm(pair: Pair) -> None:
    pair.start_sequencer()
    pair.drop(pair.seq, "OUTPUT", 0.02)  # dropped before the wire: every receiver misses the same ones
    receivers = [
        pair.receive("--retransmit", RETRANSMIT, "--from", "1", "--count", "20000", "--quiet")
        for _ in range(6)
    ]
    joined(pair.rcv)
    pair.send(20_000, rate=10_000)
    results = [report(r) for r in receivers]
    assert all(status == 0 for status, _, _ in results), [text for _, _, text in results]
    gaps = sum(r["gaps"] for _, r, _ in results)
    requests = sum(r["requests"] for _, r, _ in results)
    stats = pair.stop_sequencer()["retransmit"]
    assert gaps > 6 * 50
    # One request a gap a receiver (a retry only if the answer is lost): not one a packet.
    assert requests <= gaps * 1.2
    assert stats["requests"] == requests
    assert stats["answered"] + stats["suppressed"] + stats["throttled"] == stats["requests"]


def test_a_receiver_without_recovery_counts_the_loss_and_fails(pair: Pair) -> None:
    pair.start_sequencer()
    pair.drop(pair.rcv, "INPUT", 0.05)
    # Heartbeats keep it from going idle and it never sees 5000: it stops at --timeout (the last
    # one given wins), well after the last gap gave up.
    receiver = pair.receive("--count", "5000", "--quiet", "--give-up", "0.5", "--timeout", "10")
    joined(pair.rcv)
    pair.send(5000)
    pair.send(50)  # the last gaps time out while these arrive
    status, result, text = report(receiver)
    assert status == 1, text
    assert result["unrecovered"] > 0
    assert "unrecovered" in text.splitlines()[-1]


def test_the_journal_reads_back_as_the_bus_log(pair: Pair) -> None:
    pair.start_sequencer()
    pair.send(100, size="64")
    pair.stop_sequencer()
    show = [sys.executable, "-m", "mcastkit", "stream", "show", str(pair.journal), "--from", "42"]
    shown = subprocess.run([*show, "--count", "3"], capture_output=True, text=True, check=True).stdout
    rows = [line.split(" ") for line in shown.splitlines()]
    assert [(row[0], row[1]) for row in rows] == [("42", "64"), ("43", "64"), ("44", "64")]
    assert all(bytes.fromhex(row[2])[:4] == b"MKP1" for row in rows)
    assert os.path.isfile(pair.journal / "SESSION")
