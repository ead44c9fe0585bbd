"""mcastkit.net (shared by relay, probe and lab): address parsing, multicast socket setup and
sendmmsg/recvmmsg batches; every failure is a message naming the value."""

from __future__ import annotations

import errno
import json
import logging
import re
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from netns_support import add_veth, needs_netns, new_namespace

from mcastkit.net.addresses import AddressError, GroupPort, parse_endpoint, parse_group, resolve_interface
from mcastkit.net.mmsg import BATCH, BatchSender, DatagramSlots, Destination, buffer_address
from mcastkit.net.sockets import SocketSetupError, open_receiver, open_sender

NOT_HERE = "192.0.2.254"  # TEST-NET-1: on no host


def test_parse_group_and_endpoint() -> None:
    assert parse_group("239.1.1.1:5000", flag="--group") == ("239.1.1.1", 5000)
    assert parse_endpoint("relay.example:7400", flag="--connect") == ("relay.example", 7400)
    assert parse_endpoint(":7400", flag="--listen") == ("0.0.0.0", 7400)
    assert parse_endpoint("127.0.0.1:0", flag="--listen", any_port=True) == ("127.0.0.1", 0)
    with pytest.raises(AddressError, match=re.escape("--connect '127.0.0.1:0': port '0'")):
        parse_endpoint("127.0.0.1:0", flag="--connect")
    with pytest.raises(AddressError, match=re.escape("'239.1.1:5000': '239.1.1' is not an IPv4 address")):
        parse_group("239.1.1:5000", flag="--group")
    with pytest.raises(
        AddressError, match=re.escape("--group '224.0.0.5:5000': 224.0.0.5 is in 224.0.0.0/24")
    ):
        parse_group("224.0.0.5:5000", flag="--group")


def test_interface_by_address_or_name() -> None:
    assert resolve_interface("127.0.0.1") == "127.0.0.1"
    assert resolve_interface("lo") == "127.0.0.1"
    with pytest.raises(AddressError, match="--interface 'nosuch0': no interface of that name"):
        resolve_interface("nosuch0")
    with pytest.raises(AddressError, match="not an IPv4 address or an interface name"):
        resolve_interface("a-name-far-too-long-for-linux")
    with pytest.raises(
        AddressError, match=f"--interface {NOT_HERE}: no interface on this host has that address"
    ):
        resolve_interface(NOT_HERE)


def test_joining_on_an_address_not_on_this_host_says_so() -> None:
    with pytest.raises(SocketSetupError) as caught:
        open_receiver("239.1.2.3", 45999, NOT_HERE, buffer_bytes=1 << 20)
    assert caught.value.strerror == f"join 239.1.2.3: interface address {NOT_HERE} is not on this host"


def test_sending_from_an_address_not_on_this_host_says_so() -> None:
    with pytest.raises(SocketSetupError) as caught:
        open_sender(NOT_HERE, ttl=1, loop=False, buffer_bytes=1 << 20)
    assert (
        caught.value.strerror
        == f"set the multicast interface: interface address {NOT_HERE} is not on this host"
    )


def test_batch_sender_and_receiver_move_datagrams_intact() -> None:
    group, port = "239.254.77.7", 45977
    receiver_sock = open_receiver(group, port, "127.0.0.1", buffer_bytes=1 << 20)
    receiver = DatagramSlots(receiver_sock, capacity=100, headroom=8)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True, buffer_bytes=1 << 20)
    failures: list[object] = []
    sender = BatchSender(sender_sock, lambda code, tag, length: failures.append(tag))
    payloads = b"".join(bytes([i]) * (i + 1) for i in range(5)) + b"z" * 150
    base = buffer_address(payloads)
    destination = Destination(group, port)
    offset = 0
    for size in [1, 2, 3, 4, 5, 150]:
        sender.add(base + offset, size, destination, size)
        offset += size
    sender.flush()
    results = []
    for _ in range(50):
        results += receiver.receive()
        if len(results) == 6:
            break
        time.sleep(0.01)  # a moment for loopback delivery
    assert failures == []
    assert [length for length, _, _ in results] == [1, 2, 3, 4, 5, 100]
    assert [truncated for _, truncated, _ in results] == [False] * 5 + [True]
    first = receiver.stride * 4 + 8
    assert bytes(receiver.buffer[first : first + 5]) == b"\x04" * 5
    receiver_sock.close()
    sender_sock.close()


def test_receive_waits_for_the_first_datagram_up_to_the_receive_timeout() -> None:
    """The probe's use: one burst buffer sent on a connected socket; a blocking receive."""
    group = GroupPort("239.254.77.8", 45978)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=1 << 20, timeout=0.2)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True, connect=group)
    receiver = DatagramSlots(receiver_sock, capacity=64, slots=8)
    started = time.monotonic()
    assert receiver.receive(wait=True) == []  # nothing sent: the receive timeout ends the wait
    assert time.monotonic() - started >= 0.15
    burst = b"".join(bytes([index]) * 20 for index in range(3))
    sender = BatchSender(sender_sock, lambda code, tag, length: pytest.fail(f"refused: {code}"))
    for index in range(3):
        sender.add(buffer_address(burst) + index * 20, 20, Destination(*group), index)
    assert sender.flush() == 3
    results = receiver.receive(wait=True)
    while len(results) < 3:
        results += receiver.receive(wait=True)
    assert results == [(20, False, 0)] * 3
    assert [bytes(receiver.view[i * receiver.stride : i * receiver.stride + 20]) for i in range(3)] == [
        bytes([i]) * 20 for i in range(3)
    ]
    receiver_sock.close()
    sender_sock.close()


def _receive_all(receiver: DatagramSlots, expected: int) -> list[bytes]:
    """Every datagram waiting (up to ``expected``), as bytes, in arrival order."""
    datagrams: list[bytes] = []
    while len(datagrams) < expected:
        results = receiver.receive(wait=True)
        if not results:
            break  # the receive timeout passed with nothing new
        datagrams += [
            bytes(receiver.view[offset + i * size : offset + (i + 1) * size])
            for offset, size, count in receiver.runs(results)
            for i in range(count)
        ]
    return datagrams


def test_runs_of_equal_size_datagrams_go_as_one_message_and_arrive_cut_and_in_order() -> None:
    first, second = GroupPort("239.254.77.10", 45980), GroupPort("239.254.77.11", 45981)
    receivers = {
        group: open_receiver(*group, "127.0.0.1", buffer_bytes=4 << 20, timeout=0.5)
        for group in (first, second)
    }
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True, buffer_bytes=4 << 20)
    sender = BatchSender(sender_sock, lambda code, tag, length: pytest.fail(f"refused: {code}"))
    to_first, to_second = Destination(*first), Destination(*second)
    # (destination, size) in order: 70 equal (a full run of MAX_SEGMENTS, then 6), a shorter one
    # that ends that run, one for the other group, two more equal ones, and a longer one.
    plan = [(to_first, 64)] * 70 + [
        (to_first, 30),
        (to_second, 64),
        (to_first, 64),
        (to_first, 64),
        (to_first, 100),
    ]
    data = bytearray()
    for number, (_destination, size) in enumerate(plan):
        data += number.to_bytes(2, "big") * (size // 2)
    payloads = bytes(data)
    offset = 0
    for number, (destination, size) in enumerate(plan):
        sender.add(buffer_address(payloads) + offset, size, destination, number)
        offset += size
    assert sender.messages == 5  # 64; 6 and the shorter tail; 1; 2; the longer one starts a new run
    assert sender.flush() == len(plan)
    expected = {
        group: [
            number.to_bytes(2, "big") * (size // 2)
            for number, (destination, size) in enumerate(plan)
            if (destination.address, destination.port) == group
        ]
        for group in (first, second)
    }
    for group, sock in receivers.items():
        received = _receive_all(DatagramSlots(sock, capacity=200, slots=BATCH), len(expected[group]))
        assert received == expected[group]
        sock.close()
    sender_sock.close()


def test_an_empty_datagram_is_never_the_tail_of_a_run() -> None:
    """Cut by segment size, a run would have no segment left for an empty tail: it goes alone."""
    group = GroupPort("239.254.77.13", 45983)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=1 << 20, timeout=0.5)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True)
    sender = BatchSender(sender_sock, lambda code, tag, length: pytest.fail(f"refused: {code}"))
    payload, destination = b"x" * 64, Destination(*group)
    for size in (64, 64, 64, 0):
        sender.add(buffer_address(payload), size, destination, size)
    assert sender.messages == 2
    assert sender.flush() == 4
    received = _receive_all(DatagramSlots(receiver_sock, capacity=100, slots=8), 4)
    assert [len(datagram) for datagram in received] == [64, 64, 64, 0]
    receiver_sock.close()
    sender_sock.close()


def test_without_udp_gso_no_runs_are_formed(caplog: pytest.LogCaptureFixture) -> None:
    """A kernel without UDP GSO refuses the option (a datagram socket of another family does too)."""
    sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sock, peer, caplog.at_level(logging.WARNING, logger="mcastkit.net"):
        sender = BatchSender(sock, lambda code, tag, length: None)
        payload, destination = b"x" * 64, Destination("239.254.77.14", 45984)
        for _ in range(3):
            sender.add(buffer_address(payload), 64, destination, None)
        assert (sender.messages, sender.segment_limit) == (3, 0)
    assert "UDP GSO is not available" in caplog.text


def test_runs_refused_whatever_their_size_stop_being_formed(caplog: pytest.LogCaptureFixture) -> None:
    """With UDP checksums off the kernel refuses every run: one warning, every datagram delivered."""
    group = GroupPort("239.254.77.15", 45985)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=4 << 20, timeout=0.5)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True)
    sender_sock.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
    sender = BatchSender(sender_sock, lambda code, tag, length: pytest.fail(f"refused: {code}"))
    payload, destination = bytes(512), Destination(*group)
    sizes = [500] * 3 + [400] * 3 + [300] * 3
    with caplog.at_level(logging.WARNING, logger="mcastkit.net"):
        for size in sizes:
            sender.add(buffer_address(payload), size, destination, size)
        assert sender.messages == 3
        assert sender.flush() == len(sizes)
        for size in sizes:  # a second batch forms no runs at all
            sender.add(buffer_address(payload), size, destination, size)
        assert sender.messages == len(sizes)
        assert sender.flush() == len(sizes)
    assert sender.segment_limit == 0
    assert [r.getMessage() for r in caplog.records] == [
        "a run was refused (Invalid argument): sending all datagrams one by one"
    ]
    received = _receive_all(DatagramSlots(receiver_sock, capacity=600, slots=BATCH), 2 * len(sizes))
    assert [len(datagram) for datagram in received] == sizes * 2
    receiver_sock.close()
    sender_sock.close()


def test_a_failed_run_reports_each_datagram_with_its_own_tag_and_length() -> None:
    """Broadcast without SO_BROADCAST: the kernel refuses the whole run (EACCES)."""
    failures: list[tuple[int, object, int]] = []
    with open_sender("127.0.0.1", ttl=1, loop=False) as sender_sock:
        sender = BatchSender(sender_sock, lambda code, tag, length: failures.append((code, tag, length)))
        payload, destination = bytes(64), Destination("255.255.255.255", 9)
        for tag, size in [("a", 64), ("b", 64), ("c", 40)]:
            sender.add(buffer_address(payload), size, destination, tag)
        assert sender.messages == 1
        assert sender.flush() == 0
    assert failures == [(errno.EACCES, "a", 64), (errno.EACCES, "b", 64), (errno.EACCES, "c", 40)]


def _outcome(command: list[str]) -> dict[str, Any]:
    """Run a script that prints one JSON object; that object."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


@needs_netns
def test_a_run_the_kernel_cannot_cut_goes_datagram_by_datagram() -> None:
    """Segments over the route's MTU: the kernel refuses GSO; the datagrams still go (fragmented)."""
    with new_namespace("gso") as namespace:
        add_veth(namespace, "small0", "10.203.0.1", mtu=1000)
        outcome = _outcome(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", SEND_OVER_MTU, "10.203.0.1"]
        )
    assert outcome["refused"] == []
    assert outcome["sent"] == outcome["received"] == 6
    assert outcome["runs_before"] == 2  # 3 x 1200 B and a shorter tail; 2 x 600 B
    assert outcome["segment_limit"] == 1200  # no more runs of 1200 B or larger
    assert outcome["sizes"] == [1200] * 3 + [600] * 3


#: In a namespace whose only interface has MTU 1000: three 1200-byte datagrams and three of 600.
SEND_OVER_MTU = """
import json, sys
from mcastkit.net.mmsg import BATCH, BatchSender, DatagramSlots, Destination, buffer_address
from mcastkit.net.sockets import open_receiver, open_sender
interface = sys.argv[1]
receiver_sock = open_receiver("239.254.77.12", 45982, interface, buffer_bytes=1 << 20, timeout=0.5)
sender_sock = open_sender(interface, ttl=1, loop=True)
refused = []
sender = BatchSender(sender_sock, lambda code, tag, length: refused.append((code, tag)))
payload, destination = bytes(1200), Destination("239.254.77.12", 45982)
for size in [1200] * 3 + [600] * 3:
    sender.add(buffer_address(payload), size, destination, size)
runs_before = sender.messages
sent = sender.flush()
receiver = DatagramSlots(receiver_sock, capacity=2000, slots=BATCH)
sizes = []
while len(sizes) < 6:
    results = receiver.receive(wait=True)
    if not results:
        break
    sizes += [length for length, _, _ in results]
print(json.dumps({"refused": refused, "sent": sent, "received": len(sizes), "sizes": sizes,
                  "runs_before": runs_before, "segment_limit": sender.segment_limit}))
"""


def test_batch_sender_reports_a_refused_datagram_and_sends_the_rest() -> None:
    group = GroupPort("239.254.77.9", 45979)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=1 << 20, timeout=0.5)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True)
    failures: list[tuple[int, object, int]] = []
    sender = BatchSender(sender_sock, lambda code, tag, length: failures.append((code, tag, length)))
    data = bytes(70_000)  # more than a UDP datagram can hold
    base, destination = buffer_address(data), Destination(*group)
    for tag, size in [("first", 10), ("too big", 70_000), ("last", 20)]:
        sender.add(base, size, destination, tag)
    sender.flush()
    assert failures == [(errno.EMSGSIZE, "too big", 70_000)]
    receiver = DatagramSlots(receiver_sock, capacity=64, slots=4)
    results = receiver.receive(wait=True)
    while len(results) < 2:
        results += receiver.receive(wait=True)
    assert results == [(10, False, 0), (20, False, 0)]
    receiver_sock.close()
    sender_sock.close()


def test_add_run_queues_a_contiguous_run_like_the_datagrams_one_by_one() -> None:
    """add_run extends the run before it, cuts at MAX_SEGMENTS, and its shorter tail ends the run."""
    group = GroupPort("239.254.77.16", 45986)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=4 << 20, timeout=0.5)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True, buffer_bytes=4 << 20)
    sender = BatchSender(sender_sock, lambda code, tag, length: pytest.fail(f"refused: {code}"))
    destination = Destination(*group)
    numbered = b"".join(number.to_bytes(2, "big") * 25 for number in range(100))  # 100 x 50 B
    base = buffer_address(numbered)
    sender.add(base, 50, destination, None)  # datagram 0, alone
    assert sender.add_run(base + 50, 50, 63 * 50, destination, None) == 63  # 1-63: the run is full
    assert sender.add_run(base + 64 * 50, 50, 7 * 50, destination, None) == 7  # 64-70: a new run
    assert sender.add_run(base + 71 * 50, 50, 2 * 50 - 10, destination, None) == 2  # 71, 72 cut short
    sender.add(base + 73 * 50, 50, destination, None)  # 73: the shorter 72 ended the run before it
    assert sender.messages == 3
    assert sender.count == 74
    assert sender.flush() == 74
    received = _receive_all(DatagramSlots(receiver_sock, capacity=100, slots=BATCH), 74)
    expected = [numbered[n * 50 : (n + 1) * 50] for n in range(74)]
    expected[72] = expected[72][:40]
    assert received == expected
    for length in (65 * 100, 0):  # more than MAX_SEGMENTS; none at all
        with pytest.raises(ValueError, match=f"a run of {length} bytes in 100-byte datagrams"):
            sender.add_run(base, 100, length, destination, None)
    receiver_sock.close()
    sender_sock.close()


def test_add_run_without_runs_queues_each_datagram_alone() -> None:
    sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sock, peer:
        sender = BatchSender(sock, lambda code, tag, length: None)  # no UDP GSO on this socket
        payload, destination = bytes(300), Destination("239.254.77.17", 45987)
        assert sender.add_run(buffer_address(payload), 100, 250, destination, None) == 3
        assert (sender.messages, sender.count) == (3, 3)


def test_runs_cuts_coalesced_messages_into_their_datagrams() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        slots = DatagramSlots(sock, capacity=1000, headroom=8, slots=4)
        received = [(30, False, 0), (250, False, 100), (200, False, 100), (0, False, 0)]
        first, second, third, fourth = (index * slots.stride + 8 for index in range(4))
        assert list(slots.runs(received)) == [
            (first, 30, 1),
            (second, 100, 2),
            (second + 200, 50, 1),  # the shorter tail of the run
            (third, 100, 2),
            (fourth, 0, 1),
        ]


@needs_netns
def test_a_burst_the_receiving_nic_coalesces_arrives_as_one_message() -> None:
    """Two namespaces joined by a veth that does GRO, as a NIC does: the burst is one message."""
    with new_namespace("gro-tx") as sender_ns, new_namespace("gro-rx") as receiver_ns:
        subprocess.run(
            ["ip", "-n", sender_ns, "link", "add", "tx0", "type", "veth", "peer", "name", "rx0",
             "netns", receiver_ns],
            check=True,
        )  # fmt: skip
        for namespace, device, address in (
            (sender_ns, "tx0", "10.204.0.1"),
            (receiver_ns, "rx0", "10.204.0.2"),
        ):
            subprocess.run(
                ["ip", "-n", namespace, "address", "add", f"{address}/24", "dev", device], check=True
            )
            subprocess.run(["ip", "-n", namespace, "link", "set", device, "up"], check=True)
        subprocess.run(["ip", "-n", sender_ns, "link", "set", "tx0", "gso_max_segs", "1"], check=True)
        for namespace, device, setting in ((receiver_ns, "rx0", "gro=on"), (sender_ns, "tx0", "tso=off")):
            subprocess.run(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "mcastkit.lab.nic", device, setting],
                check=True,
            )
        outcome = _outcome([sys.executable, "-c", RECEIVE_COALESCED, sender_ns, receiver_ns])
    assert outcome["datagrams"] == [[n, 64] for n in range(10)] + [[10, 20]]
    assert any(segment == 64 and length > 64 for length, _truncated, segment in outcome["messages"])
    assert len(outcome["messages"]) < 11


#: Receive (coalescing) in one namespace what a GSO run sent from the other brings.
RECEIVE_COALESCED = """
import ctypes, json, os, sys
from mcastkit.net.mmsg import BatchSender, DatagramSlots, Destination, buffer_address
from mcastkit.net.sockets import open_receiver, open_sender
libc = ctypes.CDLL(None, use_errno=True)
def enter(namespace):
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    assert libc.setns(fd, 0x40000000) == 0, os.strerror(ctypes.get_errno())  # CLONE_NEWNET
    os.close(fd)
sender_ns, receiver_ns = sys.argv[1:]
enter(receiver_ns)
receiver_sock = open_receiver("239.254.77.18", 45988, "10.204.0.2", buffer_bytes=1 << 20, timeout=1.0)
receiver = DatagramSlots(receiver_sock, capacity=65535, slots=8, coalesce=True)
enter(sender_ns)
sender_sock = open_sender("10.204.0.1", ttl=1, loop=False)
sender = BatchSender(sender_sock, lambda code, tag, length: sys.exit(f"refused: {code}"))
payload = b"".join(n.to_bytes(2, "big") * 32 for n in range(11))
sender.add_run(buffer_address(payload), 64, 10 * 64 + 20, Destination("239.254.77.18", 45988), None)
sender.flush()
messages, datagrams = [], []
while len(datagrams) < 11:
    results = receiver.receive(wait=True)
    if not results:
        break
    messages += results
    view = receiver.view
    datagrams += [[int.from_bytes(view[offset + i * size : offset + i * size + 2], "big"), size]
                  for offset, size, count in receiver.runs(results) for i in range(count)]
print(json.dumps({"messages": messages, "datagrams": datagrams}))
"""
