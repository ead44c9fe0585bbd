"""mcastkit.net (shared by relay, probe and lab): address parsing, multicast socket setup and
sendmmsg/recvmmsg batches; every failure is a message naming the value."""

from __future__ import annotations

import errno
import re
import time

import pytest

from mcastkit.net.addresses import AddressError, GroupPort, parse_endpoint, parse_group, resolve_interface
from mcastkit.net.mmsg import BatchSender, DatagramSlots, Destination, buffer_address
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
    assert [length for length, _ in results] == [1, 2, 3, 4, 5, 100]
    assert [truncated for _, truncated in results] == [False] * 5 + [True]
    first = receiver.stride * 4 + 8
    assert bytes(receiver.buffer[first : first + 5]) == b"\x04" * 5
    receiver_sock.close()
    sender_sock.close()


def test_slots_send_on_a_connected_socket_and_wait_for_the_first_datagram() -> None:
    """The probe's use: fixed slots sent with one call; a blocking receive up to SO_RCVTIMEO."""
    group = GroupPort("239.254.77.8", 45978)
    receiver_sock = open_receiver(*group, "127.0.0.1", buffer_bytes=1 << 20, timeout=0.2)
    sender_sock = open_sender("127.0.0.1", ttl=1, loop=True, connect=group)
    receiver = DatagramSlots(receiver_sock, capacity=64, slots=8)
    started = time.monotonic()
    assert receiver.receive(wait=True) == []  # nothing sent: the receive timeout ends the wait
    assert time.monotonic() - started >= 0.15
    sender = DatagramSlots(sender_sock, capacity=32, slots=4)
    for index in range(4):
        sender.view[index * sender.stride : index * sender.stride + 32] = bytes([index]) * 32
    assert sender.send(3, 20) == 3  # 3 slots, 20 bytes of each
    results = receiver.receive(wait=True)
    while len(results) < 3:
        results += receiver.receive(wait=True)
    assert results == [(20, False)] * 3
    assert [bytes(receiver.view[i * receiver.stride : i * receiver.stride + 20]) for i in range(3)] == [
        bytes([i]) * 20 for i in range(3)
    ]
    receiver_sock.close()
    sender_sock.close()


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
    assert results == [(10, False), (20, False)]
    receiver_sock.close()
    sender_sock.close()
