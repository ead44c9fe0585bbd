"""Ingress and egress end to end on loopback multicast (127.0.0.1 with IP_MULTICAST_LOOP), in one process.

Each test picks its own random groups and ports, so tests can run next to a lab or another suite.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mcastkit.net.limits import MAX_DATAGRAM
from mcastkit.net.mmsg import DatagramSlots
from mcastkit.net.sockets import open_receiver
from mcastkit.relay.auth import HELLO, Role, handshake
from mcastkit.relay.egress import Egress
from mcastkit.relay.frame import HEADER_SIZE, VERSION, FrameType, encode, encode_resume, group_to_int
from mcastkit.relay.ingress import Ingress
from mcastkit.relay.link import MAX_HANDSHAKES, Connection, Link, RelayNode
from mcastkit.relay.metrics import RelayStats, render
from mcastkit.relay.seal import SEAL_SIZE, SealedDecoder, Sealer, SealKeys
from mcastkit.relay.window import ENTRY_OVERHEAD

SECRET = b"test secret for the relay suite"
#: Keys for links built by hand (a handshake derives fresh ones for every real link).
KEYS = SealKeys(send=b"s" * 32, receive=b"r" * 32)
LOOPBACK = "127.0.0.1"
HEARTBEAT = 0.2

pytestmark = pytest.mark.timeout(60)


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 45))


def _random_group() -> tuple[str, int]:
    return (
        f"239.{random.randint(200, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}",
        random.randint(20000, 60000),
    )


def _sender() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return sock


def _message(index: int, size: int = 64) -> bytes:
    return struct.pack("!I", index) + b"m" * (size - 4)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Receiver:
    """Collects what arrives on a group in the background."""

    def __init__(self, group: tuple[str, int]) -> None:
        self._start(open_receiver(*group, LOOPBACK, buffer_bytes=8 << 20))

    def _start(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received: list[bytes] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.received.append(await loop.sock_recv(self.sock, 65536))

    def indexes(self) -> list[int]:
        return [struct.unpack_from("!I", data)[0] for data in self.received if len(data) >= 4]

    def close(self) -> None:
        self._task.cancel()
        self.sock.close()


async def send(sock: socket.socket, group: tuple[str, int], messages: list[bytes], burst: int = 50) -> None:
    """Send in bursts, yielding between them so the relays in this loop keep up."""
    for start in range(0, len(messages), burst):
        for message in messages[start : start + burst]:
            sock.sendto(message, group)
        await asyncio.sleep(0.002)


@asynccontextmanager
async def running(
    node: RelayNode, *, listen: bool = False, connect: list[tuple[str, int]] = ()
) -> AsyncIterator[Any]:  # type: ignore[assignment]
    task = asyncio.create_task(node.run(listen=(LOOPBACK, 0) if listen else None, connect=list(connect)))
    await asyncio.wait_for(node.ready.wait(), 5)
    try:
        yield node
    finally:
        node.stop()
        await asyncio.wait_for(task, 10)


def _ingress(groups: list[tuple[str, int]], **kwargs: Any) -> Ingress:
    kwargs.setdefault("secret", SECRET)
    return Ingress(
        groups=groups, interface=LOOPBACK, stats=RelayStats("ingress"), heartbeat=HEARTBEAT, **kwargs
    )


def _egress(mapping: dict[tuple[str, int], tuple[str, int]], **kwargs: Any) -> Egress:
    kwargs.setdefault("secret", SECRET)
    return Egress(
        interface=LOOPBACK, ttl=1, stats=RelayStats("egress"), mapping=mapping, heartbeat=HEARTBEAT, **kwargs
    )


def _endpoint(node: RelayNode) -> tuple[str, int]:
    assert node.listening is not None
    return node.listening


def _label(group: tuple[str, int]) -> str:
    return f"{group[0]}:{group[1]}"


# The datacenter group and where the egress re-emits it: never the same group on one host,
# or the ingress would hear the egress and loop.
def _groups() -> tuple[tuple[str, int], tuple[str, int]]:
    source = _random_group()
    target = _random_group()
    while target == source:
        target = _random_group()
    return source, target


def test_forwards_every_datagram_in_order_and_counts_it() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        sizes = [0, 1, 64, 1024, MAX_DATAGRAM] + [64] * 295
        messages = [_message(i, max(size, 4)) if size else b"" for i, size in enumerate(sizes)]
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_egress({source: target}), connect=[_endpoint(ingress)]) as egress,
        ):
            await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the link")
            await send(_sender(), source, messages)
            await until(lambda: len(receiver.received) == len(messages), "every datagram")
            stats = egress.stats.groups[_label(target)]
            assert stats.datagrams_out == len(messages)
            assert stats.bytes_out == sum(len(m) for m in messages)
            assert (stats.gaps, stats.duplicates) == (0, 0)
            assert ingress.stats.groups[_label(source)].datagrams_in == len(messages)
        receiver.close()
        assert receiver.received == messages

    _run(scenario)


def test_one_ingress_serves_two_egress_regions() -> None:
    async def scenario() -> None:
        source, london = _groups()
        _, tokyo = _groups()
        receivers = [Receiver(london), Receiver(tokyo)]
        messages = [_message(i) for i in range(200)]
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_egress({source: london}), connect=[_endpoint(ingress)]),
            running(_egress({source: tokyo}), connect=[_endpoint(ingress)]),
        ):
            await until(lambda: ingress.stats.peers == 2, "both links")
            await send(_sender(), source, messages)
            await until(lambda: all(len(r.received) == len(messages) for r in receivers), "both streams")
            assert ingress.stats.groups[_label(source)].datagrams_out == 2 * len(messages)
        for receiver in receivers:
            receiver.close()
            assert receiver.received == messages

    _run(scenario)


def test_datagrams_over_the_tgw_mtu_are_dropped_and_counted() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_egress({source: target}), connect=[_endpoint(ingress)]) as egress,
        ):
            await until(lambda: egress.stats.peers == 1, "the link")
            sender = _sender()
            for message in [_message(1, MAX_DATAGRAM + 1), _message(2, 9000), _message(3, MAX_DATAGRAM)]:
                sender.sendto(message, source)
            await until(lambda: len(receiver.received) == 1, "the datagram that fits")
            await asyncio.sleep(0.1)
            assert ingress.stats.drops["oversize"] == 2
        receiver.close()
        assert receiver.indexes() == [3]
        assert len(receiver.received[0]) == MAX_DATAGRAM == 8472

    _run(scenario)


class Proxy:
    """A TCP hop that can be cut (connections aborted, port closed) and restored on the same port;
    ``tamper`` may rewrite what the dialer sends (each read, until it returns it unchanged)."""

    def __init__(self, target: tuple[str, int], tamper: Callable[[bytes], bytes] | None = None) -> None:
        self.target = target
        self.tamper = tamper
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.BaseTransport] = []

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return LOOPBACK, self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._transports += [writer.transport, up_writer.transport]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, tamper: bool) -> None:
            while data := await src.read(65536):
                dst.write(self.tamper(data) if tamper and self.tamper else data)
            dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, True), pipe(up_reader, writer, False), return_exceptions=True
        )

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    async def restore(self) -> None:
        await self.start()


@pytest.mark.parametrize("dialer", ["ingress", "egress"])
def test_reconnects_after_the_link_is_cut_and_replays_what_it_missed(dialer: str) -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        sender = _sender()
        ingress, egress = _ingress([source]), _egress({source: target})
        listener, dialing = (egress, ingress) if dialer == "ingress" else (ingress, egress)
        async with running(listener, listen=True):
            proxy = Proxy(_endpoint(listener))
            async with running(dialing, connect=[await proxy.start()]):
                await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the link")
                await send(sender, source, [_message(i) for i in range(50)])
                await until(lambda: len(receiver.received) == 50, "the first batch")

                await proxy.cut()
                await until(lambda: ingress.stats.peers == 0 and egress.stats.peers == 0, "the cut")
                # Nobody to send to: kept in the replay window (and counted as no_peer).
                await send(sender, source, [_message(i) for i in range(50, 80)])
                await asyncio.sleep(0.05)
                await proxy.restore()
                await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the reconnect")

                await send(sender, source, [_message(i) for i in range(80, 130)])
                await until(lambda: len(receiver.received) == 130, "the stream to resume")
                stats = egress.stats.groups[_label(target)]
                assert stats.gaps == 0 and stats.duplicates == 0
                assert ingress.stats.groups[_label(source)].replayed == 30
                assert ingress.stats.groups[_label(source)].unrecoverable == 0
                assert ingress.stats.drops["no_peer"] == 30
                assert ingress.stats.reconnects == 1 and egress.stats.reconnects == 1
                assert ingress.stats.resumes == 1 and egress.stats.resumes == 1
        receiver.close()
        assert receiver.indexes() == list(range(130))

    _run(scenario)


_BACKGROUND: set[asyncio.Task[None]] = set()


class SealedWriter:
    """A raw peer's writer: seals each write as a relay does (``raw`` writes it unsealed)."""

    def __init__(self, writer: asyncio.StreamWriter, keys: SealKeys) -> None:
        self.raw = writer
        self.keys = keys
        self._sealer = Sealer(keys.send)

    def write(self, data: bytes) -> None:
        self.raw.write(data + self._sealer.seal(data))

    def write_eof(self) -> None:
        self.raw.write_eof()

    def is_closing(self) -> bool:
        return self.raw.is_closing()

    def close(self) -> None:
        self.raw.close()


async def _heartbeats(writer: SealedWriter) -> None:
    try:
        while not writer.is_closing():
            writer.write(encode(FrameType.HEARTBEAT))
            await asyncio.sleep(HEARTBEAT / 2)
    except (RuntimeError, ConnectionError):
        pass  # the test closed or half-closed the connection


async def _raw_peer(
    endpoint: tuple[str, int],
    *,
    role: Role,
    secret: bytes = SECRET,
    rcvbuf: int | None = None,
    heartbeats: bool = True,
    session: int | None = None,
    resume: bytes | None = None,
) -> tuple[asyncio.StreamReader, SealedWriter]:
    """A hand-driven peer that authenticates like a relay, then does whatever the test says.

    It sends heartbeats (unless told not to), so only what the test does can get it dropped; what
    it reads is sealed with ``writer.keys.receive``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, endpoint)
    reader, raw = await asyncio.open_connection(sock=sock)
    session = random.getrandbits(64) if session is None else session
    hello = await handshake(reader, raw, secret=secret, role=role, session=session, dialer=True)
    writer = SealedWriter(raw, hello.keys)
    if role is Role.EGRESS:  # by default nothing to resume: the live stream from now on
        writer.write(encode_resume({}, known=False) if resume is None else resume)
    if heartbeats:
        task = asyncio.create_task(_heartbeats(writer))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
    return reader, writer


def test_wrong_secret_gets_nothing_is_logged_and_good_peer_keeps_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mcastkit.relay")

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_egress({source: target}), connect=[_endpoint(ingress)]) as good,
        ):
            await until(lambda: good.stats.peers == 1, "the good link")
            # An impostor speaking the protocol with a guessed secret, reading everything it is sent.
            reader, writer = await asyncio.open_connection(*_endpoint(ingress))
            writer.write(encode(FrameType.HELLO, HELLO.pack(Role.EGRESS, b"n" * 32, 7)))
            writer.write(encode(FrameType.PROOF, b"\0" * 32))
            await send(_sender(), source, [_message(i) for i in range(100)])
            leaked = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await until(lambda: len(receiver.received) == 100, "the good peer's stream")
            assert ingress.stats.auth_failures == 1
            assert ingress.stats.peers == 1
        receiver.close()
        assert len(leaked) == 32 + 41  # our HELLO's header + payload, then the close: no data
        assert receiver.indexes() == list(range(100))

    _run(scenario)
    assert any("auth failed" in r.getMessage() and "shared secret" in r.getMessage() for r in caplog.records)


def test_stalled_peer_is_dropped_while_another_receives_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mcastkit.relay")

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        count, size = 8000, 1000
        async with running(_ingress([source], queue_bytes=256 * 1024), listen=True) as ingress:
            _stalled_reader, stalled_writer = await _raw_peer(
                _endpoint(ingress), role=Role.EGRESS, rcvbuf=4096
            )
            async with running(_egress({source: target}), connect=[_endpoint(ingress)]) as egress:
                await until(lambda: ingress.stats.peers == 2, "both peers")
                await send(_sender(), source, [_message(i, size) for i in range(count)], burst=20)
                await until(lambda: len(receiver.received) == count, "the healthy peer's stream", timeout=20)
                assert ingress.stats.disconnects["slow_peer"] == 1
                assert ingress.stats.peers == 1
                assert egress.stats.groups[_label(target)].gaps == 0
                await until(lambda: ingress.stats.queued == 0, "the queue to empty")
                group = ingress.stats.groups[_label(source)]
                assert ingress.stats.drops["slow_peer_queue"] > 0
                due, accounted = _accounted(ingress, source)
                assert due == accounted
                # each datagram was due to the healthy peer, and to the stalled one until it was dropped
                stalled_share = due - group.datagrams_in
                assert 0 < stalled_share < count
                assert group.datagrams_out == count + stalled_share - ingress.stats.drops["slow_peer_queue"]
            stalled_writer.close()
        receiver.close()
        assert receiver.indexes() == list(range(count))

    _run(scenario)
    assert any("behind" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


QUEUE_DROPS = ("no_peer", "slow_peer_queue", "link_lost_queue")


def _accounted(ingress: Ingress, source: tuple[str, int]) -> tuple[int, int]:
    """(copies due, copies accounted for): the ingress identity of "Counters" in mcastkit.relay."""
    stats = ingress.stats.groups[_label(source)]
    drops = sum(ingress.stats.drops[reason] for reason in QUEUE_DROPS)
    return stats.datagrams_due, stats.datagrams_out + drops + ingress.stats.queued


def test_datagrams_arriving_with_no_peer_are_counted_as_drops() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        sender = _sender()
        async with running(_ingress([source]), listen=True) as ingress:
            stats = ingress.stats.groups  # filled in as the groups are joined
            await send(sender, source, [_message(i) for i in range(40)])
            await until(lambda: stats[_label(source)].datagrams_in == 40, "the datagrams to arrive")
            assert ingress.stats.drops["no_peer"] == 40
            assert stats[_label(source)].datagrams_out == 0
            assert _accounted(ingress, source) == (40, 40)

            async with running(_egress({source: target}), connect=[_endpoint(ingress)]):
                await until(lambda: ingress.stats.peers == 1, "the link")
                await send(sender, source, [_message(i) for i in range(40, 100)])
                await until(lambda: len(receiver.received) == 60, "the stream")
                await until(lambda: ingress.stats.queued == 0, "the queue to empty")
                group = stats[_label(source)]
                assert (group.datagrams_in, group.datagrams_out, ingress.stats.drops["no_peer"]) == (
                    100,
                    60,
                    40,
                )
                # one peer at most: in = out + drops
                assert group.datagrams_in == group.datagrams_out + sum(ingress.stats.drops.values())
                assert _accounted(ingress, source) == (100, 100)
        receiver.close()
        assert receiver.indexes() == list(range(40, 100))

    _run(scenario)


def test_slow_peer_queue_is_counted_as_dropped_not_sent() -> None:
    """The only peer stalls: whatever its queue held when it was dropped is a drop, not ``out``."""

    async def scenario() -> None:
        source, _ = _groups()
        count, size = 0, 1000
        async with running(_ingress([source], queue_bytes=128 * 1024), listen=True) as ingress:
            _reader, writer = await _raw_peer(_endpoint(ingress), role=Role.EGRESS, rcvbuf=4096)
            await until(lambda: ingress.stats.peers == 1, "the peer")
            sender = _sender()
            # Until the kernel's send buffer and then the 128 KiB queue are full (a few MB).
            while not ingress.stats.disconnects["slow_peer"] and count < 40_000:
                await send(sender, source, [_message(i, size) for i in range(count, count + 1000)], burst=20)
                count += 1000
                await asyncio.sleep(0.01)
            await until(lambda: ingress.stats.disconnects["slow_peer"] == 1, "the peer to be dropped")
            await send(sender, source, [_message(i, size) for i in range(count, count + 50)])
            count += 50
            group = ingress.stats.groups[_label(source)]
            await until(lambda: group.datagrams_in == count, "every datagram to arrive", timeout=20)
            drops = ingress.stats.drops
            assert drops["slow_peer_queue"] > 0 and drops["no_peer"] >= 50
            assert ingress.stats.queued == 0
            assert group.datagrams_in == group.datagrams_out + drops["slow_peer_queue"] + drops["no_peer"]
            assert group.datagrams_in == group.datagrams_due
            assert group.bytes_out == group.datagrams_out * size
            assert 0 < group.datagrams_out < count
            writer.close()

    _run(scenario)


def test_a_partly_sent_queue_counts_only_whole_sealed_batches_out() -> None:
    """A peer dropped mid-batch: the batches wholly on the socket, seal and all, are out; the
    egress acts on no frame of a batch whose seal it lacks, so the rest drops."""

    class Transport:
        def __init__(self) -> None:
            self.unsent = 0
            self.aborted = False

        def writelines(self, data: list[bytes]) -> None:
            pass

        def get_write_buffer_size(self) -> int:
            return self.unsent

        def is_closing(self) -> bool:
            return self.aborted

        def abort(self) -> None:
            self.aborted = True

        def get_extra_info(self, name: str) -> None:
            return None  # no socket behind it

    async def scenario() -> None:
        source, _ = _groups()
        ingress = _ingress([source])
        transport = Transport()
        link = Link(Connection(), transport, "peer", session=1, keys=KEYS)  # type: ignore[arg-type]
        _link_live(ingress, link)
        stats = ingress.stats.group(_label(source))
        batches = [
            b"".join(encode(FrameType.DATA, p, group=1, port=2, sequence=i) for i, p in enumerate(payloads))
            for payloads in ([b"a" * 10, b"b" * 20], [b"c" * 30])
        ]
        first, second = (len(batch) + SEAL_SIZE for batch in batches)

        transport.unsent = first  # nothing of it on the socket yet
        ingress._send(batches[0], 2, 30, stats)
        transport.unsent = first + second
        ingress._send(batches[1], 1, 30, stats)
        assert (stats.datagrams_out, ingress.stats.queued) == (0, 3)
        transport.unsent = second - 5  # the first batch and its seal went, and 5 bytes of the second
        link.abort("heartbeat_timeout")
        assert (stats.datagrams_out, stats.bytes_out) == (2, 30)
        assert ingress.stats.drops["link_lost_queue"] == 1
        assert ingress.stats.queued == 0
        assert _accounted(ingress, source) == (3, 3)

        link.abort("again")  # counted once
        ingress.link_down(link)
        assert _accounted(ingress, source) == (3, 3)

    _run(scenario)


def _link_live(ingress: Ingress, link: Link) -> None:
    """An authenticated peer that has nothing to resume: it takes the stream as it arrives."""
    ingress.link_up(link)
    ingress.links = (link,)
    resume = encode_resume({}, known=False)
    assert ingress.receive(link, resume + Sealer(KEYS.receive).seal(resume)) is None


class _Capture:
    """A transport that takes every write at once and keeps it."""

    def __init__(self) -> None:
        self.written = bytearray()

    def writelines(self, data: list[bytes]) -> None:
        self.written += b"".join(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def test_ingress_frames_a_coalesced_run_as_run_frames_numbered_in_turn() -> None:
    """What the kernel hands over coalesced (UDP GRO) goes as RUN frames of up to 64 datagrams."""

    async def scenario() -> None:
        source, _ = _groups()
        ingress = _ingress([source])
        ingress.open()
        transport = _Capture()
        link = Link(Connection(), transport, "peer", session=1, keys=KEYS)  # type: ignore[arg-type]
        _link_live(ingress, link)
        feed = ingress._sources[0]
        slots = DatagramSlots(feed.sock, capacity=20_000, headroom=HEADER_SIZE, slots=4)
        messages = [b"alone", bytes(range(100)) * 8 + b"end", b"x" * 18_000]
        for index, message in enumerate(messages):
            start = index * slots.stride + HEADER_SIZE
            slots.buffer[start : start + len(message)] = message
        batches = [[(5, False, 0), (803, False, 8), (18_000, False, 9_000)], []]
        slots.receive = lambda: batches.pop(0)  # type: ignore[method-assign]
        feed.receiver = slots
        assert ingress._on_readable(feed) == 3
        frames = list(SealedDecoder(KEYS.send).feed(bytes(transport.written)))
        assert (
            [
                (kind, segment, sequence, bytes(payload))
                for kind, _g, _p, segment, sequence, _t, payload in frames
            ]
            == [
                (FrameType.DATA, 0, 1, b"alone"),
                (FrameType.RUN, 8, 2, messages[1][: 64 * 8]),  # 64 datagrams, 2-65
                (FrameType.RUN, 8, 66, messages[1][64 * 8 :]),  # 36 and the 3-byte tail, 66-102
            ]
        )
        stats = ingress.stats.groups[_label(source)]
        assert (stats.datagrams_in, stats.datagrams_out, stats.bytes_out) == (102, 102, 5 + 803)
        assert stats.datagrams_in_runs == 101
        assert ingress.stats.drops["oversize"] == 2  # a run of 9,000-byte datagrams: over the TGW MTU
        # The replay window keeps the batch as it was written, numbered from its first datagram.
        (kept,) = [ingress.window[i] for i in range(ingress.window.start, ingress.window.end)]
        assert (kept.first, kept.datagrams, kept.chunk) == (1, 102, bytes(transport.written[:-SEAL_SIZE]))
        ingress.close()

    _run(scenario)


HOSTILE = {
    "bad_magic": (b"XX" + b"\0" * 40, "protocol_error"),
    "huge_length": (struct.pack("!HBBI", 0x4D4B, VERSION, 1, 0x7FFFFFFF) + b"\0" * 24, "protocol_error"),
    "garbage": (bytes(random.Random(3).getrandbits(8) for _ in range(500)), "protocol_error"),
    "truncated": (
        encode(FrameType.DATA, b"x" * 100, group=group_to_int("239.9.9.9"), port=9)[:60],
        "truncated_frame",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_malformed_input_closes_only_that_connection(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mcastkit.relay")
    payload, reason = HOSTILE[case]

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with (
            running(_egress({source: target}), listen=True) as egress,
            running(_ingress([source]), connect=[_endpoint(egress)]),
        ):
            await until(lambda: egress.stats.peers == 1, "the good link")
            reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            await until(lambda: egress.stats.peers == 2, "the hostile peer to authenticate")
            writer.write(payload)
            if case == "truncated":
                writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) is not None  # the egress closes it
            await until(lambda: egress.stats.disconnects[reason] == 1, f"disconnect ({reason})")
            await send(_sender(), source, [_message(i) for i in range(100)])
            await until(lambda: len(receiver.received) == 100, "the good stream")
            assert egress.stats.peers == 1
            writer.close()
        receiver.close()

    _run(scenario)
    if reason == "protocol_error":
        assert any("protocol error from" in r.getMessage() for r in caplog.records)


def test_egress_counts_gaps_and_duplicates_and_never_emits_what_it_must_not() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        group = group_to_int(source[0])

        def data(sequence: int, payload: bytes, to: int = group) -> bytes:
            return encode(FrameType.DATA, payload, group=to, port=source[1], sequence=sequence)

        async with running(_egress({source: target}), listen=True) as egress:
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            for sequence in [1, 2, 5, 5, 3, 6]:
                writer.write(data(sequence, _message(sequence)))
            writer.write(data(7, _message(7, MAX_DATAGRAM + 1)))
            writer.write(data(1, _message(99), to=group_to_int("10.1.2.3")))
            writer.write(data(8, _message(8)))
            await until(lambda: len(receiver.received) == 5, "the valid datagrams")
            await asyncio.sleep(0.1)
            stats = egress.stats.groups[_label(target)]
            assert (stats.gaps, stats.duplicates) == (2, 2)
            assert egress.stats.drops["oversize"] == 1
            assert egress.stats.drops["not_multicast"] == 1
            # the egress identity: in = out + duplicates + drops (refused datagrams count under "refused")
            labels = [_label(target), "refused"]
            total_in = sum(egress.stats.groups[label].datagrams_in for label in labels)
            total_out = sum(egress.stats.groups[label].datagrams_out for label in labels)
            assert total_in == 9
            assert total_in == total_out + stats.duplicates + sum(egress.stats.drops.values())
            writer.close()
        receiver.close()
        assert receiver.indexes() == [1, 2, 5, 6, 8]

    _run(scenario)


def test_egress_emits_each_datagram_of_a_run_and_counts_it_by_sequence_number() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)

        def run(sequence: int, numbers: list[int], size: int = 64, last: int | None = None) -> bytes:
            datagrams = [_message(number, size) for number in numbers]
            if last is not None:
                datagrams[-1] = datagrams[-1][:last]
            return encode(
                FrameType.RUN,
                b"".join(datagrams),
                group=group_to_int(source[0]),
                port=source[1],
                segment=size,
                sequence=sequence,
            )

        async with running(_egress({source: target}), listen=True) as egress:
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            writer.write(run(1, [1, 2, 3]))
            writer.write(run(6, [6, 7]))  # 4 and 5 never came
            writer.write(run(5, [5, 6, 7, 8]))  # 5-7 again: only 8 is new
            writer.write(run(9, [9, 10, 11], last=10))  # the last datagram is shorter
            writer.write(run(12, [12, 13], size=MAX_DATAGRAM + 1))  # over the TGW MTU
            writer.write(run(14, [14]))
            await until(lambda: len(receiver.received) == 10, "the datagrams to emit")
            await asyncio.sleep(0.1)
            stats = egress.stats.groups[_label(target)]
            assert (stats.gaps, stats.duplicates) == (2, 3)
            assert egress.stats.drops["oversize"] == 2
            assert stats.datagrams_in == stats.datagrams_in_runs == 15
            assert (
                stats.datagrams_in == stats.datagrams_out + stats.duplicates + egress.stats.drops["oversize"]
            )
            assert stats.bytes_out == 9 * 64 + 10
            writer.close()
        receiver.close()
        assert receiver.indexes() == [1, 2, 3, 6, 7, 8, 9, 10, 11, 14]
        assert [len(data) for data in receiver.received] == [64] * 8 + [10, 64]

    _run(scenario)


def test_silent_peer_is_dropped_by_heartbeat_timeout() -> None:
    async def scenario() -> None:
        async with running(_egress({}), listen=True) as egress:
            reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS, heartbeats=False)
            await until(lambda: egress.stats.peers == 1, "the link")
            # The peer sends nothing more (no heartbeats): dead after 3 intervals.
            await until(lambda: egress.stats.disconnects["heartbeat_timeout"] == 1, "the timeout", timeout=5)
            assert egress.stats.peers == 0
            received = await asyncio.wait_for(reader.read(), 5)
            assert received.count(b"MK") >= 1  # it did send us heartbeats before giving up
            writer.close()

    _run(scenario)


def test_ingress_refuses_data_from_an_egress() -> None:
    async def scenario() -> None:
        source, _ = _groups()
        async with running(_ingress([source]), listen=True) as ingress:
            _reader, writer = await _raw_peer(_endpoint(ingress), role=Role.EGRESS)
            writer.write(encode(FrameType.DATA, b"inject", group=group_to_int(source[0]), port=source[1]))
            await until(lambda: ingress.stats.disconnects["protocol_error"] == 1, "the refusal")
            writer.close()

    _run(scenario)


def test_stopping_ingress_forwards_what_already_arrived_then_says_bye() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with running(_egress({source: target}), listen=True) as egress:
            ingress = _ingress([source])
            async with running(ingress, connect=[_endpoint(egress)]):
                await until(lambda: egress.stats.peers == 1, "the link")
                sender = _sender()
                for index in range(500):  # no yielding: all of it still sits in the socket buffer
                    sender.sendto(_message(index), source)
            await until(lambda: egress.stats.disconnects["peer_closed"] == 1, "the BYE")
            await until(lambda: len(receiver.received) == 500, "everything sent before the stop")
        receiver.close()
        assert receiver.indexes() == list(range(500))

    _run(scenario)


def test_a_busy_relay_sends_heartbeats_from_the_data_path() -> None:
    """A loop busy with data runs timers late, so the data path itself beats when one is due."""

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def writelines(self, data: list[bytes]) -> None:
            self.written.append(b"".join(data))

        def is_closing(self) -> bool:
            return False

    async def scenario() -> None:
        egress = _egress({})
        egress.open()
        transport = Transport()
        connection = Connection()
        link = Link(connection, transport, "peer", session=1, keys=KEYS)  # type: ignore[arg-type]
        egress.link_up(link)
        decoder, sealer = SealedDecoder(KEYS.send), Sealer(KEYS.receive)
        assert [frame[0] for frame in decoder.feed(b"".join(transport.written))] == [FrameType.RESUME]
        transport.written.clear()
        on_data = egress._handler(link)
        connection.last_rx = link.heartbeat_sent_at + HEARTBEAT  # a beat is due
        beat = encode(FrameType.HEARTBEAT)
        on_data(beat + sealer.seal(beat))
        assert [frame[0] for frame in decoder.feed(b"".join(transport.written))] == [FrameType.HEARTBEAT]
        on_data(beat + sealer.seal(beat))  # not due again yet
        assert len(transport.written) == 1
        egress.close()

    _run(scenario)


def test_metrics_text_has_every_family() -> None:
    stats = RelayStats("egress")
    group = stats.group("239.1.1.1:5000")
    group.datagrams_out, group.gaps, group.datagrams_in_runs = 10, 3, 6
    stats.drops["oversize"] = 2
    stats.disconnects["slow_peer"] = 1
    stats.auth_failures = 4
    text = render(stats).decode()
    for line in [
        'mcastkit_relay_info{role="egress",version="0.1.0"} 1.0',
        'mcastkit_relay_datagrams_out_total{group="239.1.1.1:5000"} 10.0',
        'mcastkit_relay_gaps_total{group="239.1.1.1:5000"} 3.0',
        'mcastkit_relay_datagrams_in_runs_total{group="239.1.1.1:5000"} 6.0',
        'mcastkit_relay_drops_total{reason="oversize"} 2.0',
        'mcastkit_relay_disconnects_total{reason="slow_peer"} 1.0',
        "mcastkit_relay_auth_failures_total 4.0",
        "mcastkit_relay_peers 0.0",
        "mcastkit_relay_reconnects_total 0.0",
    ]:
        assert line in text.splitlines(), line
    assert "datagrams_due" not in text and "queued" not in text  # ingress only

    stats = RelayStats("ingress")
    group = stats.group("239.1.1.1:5000")
    group.datagrams_due, stats.queued = 7, 2
    stats.drops["no_peer"] = 5
    lines = render(stats).decode().splitlines()
    assert 'mcastkit_relay_datagrams_due_total{group="239.1.1.1:5000"} 7.0' in lines
    assert "mcastkit_relay_queued_datagrams 2.0" in lines
    assert 'mcastkit_relay_drops_total{reason="no_peer"} 5.0' in lines


def test_unauthenticated_connections_cannot_lock_the_real_peer_out() -> None:
    """Strangers that connect and say nothing neither use up --max-peers nor, beyond
    MAX_HANDSHAKES, keep the handshake slots: the oldest gives way to a new connection."""

    async def scenario() -> None:
        source, _ = _groups()
        async with running(_ingress([source], max_peers=1), listen=True) as ingress:
            host, port = _endpoint(ingress)
            idle = [await asyncio.open_connection(host, port) for _ in range(MAX_HANDSHAKES + 2)]
            await until(
                lambda: ingress.stats.disconnects["handshake_evicted"] == 2, "the oldest strangers to go"
            )
            async with running(_egress({}), connect=[(host, port)]) as egress:
                await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the real link")
            for _reader, writer in idle:
                writer.close()

    _run(scenario)


def test_egress_emits_only_allowed_data_groups_and_keeps_no_state_for_the_rest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An ingress that names link-local groups, groups not allowed, or ever new groups: nothing of
    it is emitted, state and metrics labels stay bounded, and each reason is logged once."""
    from mcastkit.relay import egress as egress_module

    monkeypatch.setattr(egress_module, "MAX_STREAMS", 3)

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        other = ("239.255.77.77", source[1])

        def data(group: str, port: int, sequence: int = 1) -> bytes:
            return encode(
                FrameType.DATA, _message(sequence), group=group_to_int(group), port=port, sequence=sequence
            )

        allowed = _egress({}, allow=[target])
        async with running(allowed, listen=True) as egress:
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            writer.write(data("224.0.0.251", 5353))  # mDNS
            writer.write(data(*other))  # a data group, but not allowed
            writer.write(data(*target, sequence=1))
            await until(lambda: len(receiver.received) == 1, "the allowed datagram")
            await asyncio.sleep(0.1)
            assert egress.stats.drops == {"link_local": 1, "not_allowed": 1}
            assert set(egress.stats.groups) == {"refused", _label(target)}
            writer.close()

        unbounded = _egress({})
        async with running(unbounded, listen=True) as egress:
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            for n in range(200):
                writer.write(data(f"239.200.{n // 250}.{n % 250 + 1}", 40000))
            await until(lambda: egress.stats.drops["too_many_groups"] == 197, "the groups past the bound")
            assert len(egress.stats.groups) == 3 + 1  # three streams and "refused", not 200
            writer.close()
        receiver.close()

    with caplog.at_level("WARNING", logger="mcastkit.relay"):
        _run(scenario)
    refusals = [r.getMessage() for r in caplog.records if "not emitted" in r.getMessage()]
    assert len(refusals) == 3, refusals  # one line per reason, not one per datagram


def test_a_flood_of_strangers_is_counted_in_few_log_lines_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Impostors with a wrong proof, and strangers evicted mid-handshake while they write: every one
    counted, a handful of log lines for all of them, and nothing escapes as a traceback."""
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        source, _ = _groups()
        loop = asyncio.get_running_loop()
        escaped: list[Any] = []
        loop.set_exception_handler(lambda _loop, context: escaped.append(context))
        async with running(_ingress([source]), listen=True) as ingress:
            host, port = _endpoint(ingress)
            for _ in range(30):  # wrong proofs
                _reader, writer = await asyncio.open_connection(host, port)
                writer.write(encode(FrameType.HELLO, HELLO.pack(Role.EGRESS, b"n" * 32, 7)))
                writer.write(encode(FrameType.PROOF, b"\0" * 32))
                writer.close()
            idle = [await asyncio.open_connection(host, port) for _ in range(MAX_HANDSHAKES * 3)]
            await until(
                lambda: ingress.stats.disconnects["handshake_evicted"] == MAX_HANDSHAKES * 2, "the evictions"
            )
            for _reader, writer in idle:
                writer.close()
            # Every stranger is counted once: refused at its proof, or its handshake ended early.
            strangers = 30 + len(idle)
            await until(
                lambda: (
                    ingress.stats.auth_failures + ingress.stats.disconnects["handshake_aborted"] == strangers
                ),
                "every stranger counted",
            )
            await asyncio.sleep(0.2)
        assert escaped == []

    _run(scenario)
    lines = [r.getMessage() for r in caplog.records if r.name == "mcastkit.relay"]
    assert sum("auth failed" in line for line in lines) == 1
    assert sum("unauthenticated" in line for line in lines) == 1
    assert sum("handshake with" in line for line in lines) <= 1
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_the_throttle_logs_the_first_then_one_line_an_interval_with_the_count() -> None:
    from mcastkit.relay.throttle import Throttle

    now = [0.0]
    logger = logging.getLogger("mcastkit.test.throttle")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger.addHandler(Keep())
    logger.propagate = False
    throttle = Throttle(logger, every_s=10.0, clock=lambda: now[0])
    for second in range(25):
        now[0] = float(second)
        throttle.warning("auth", "auth failed: %s", second)
        throttle.warning("other", "other: %s", second)
    assert [r for r in records if r.startswith("auth")] == [
        "auth failed: 0",
        "auth failed: 10 (and 9 more like it since the last line)",
        "auth failed: 20 (and 9 more like it since the last line)",
    ]
    assert len([r for r in records if r.startswith("other")]) == 3


def test_a_second_link_claiming_a_live_session_is_refused_and_the_stream_goes_on() -> None:
    """Even with the secret, a link that claims the session of a live ingress gets nothing in: the
    real stream is neither interleaved nor silenced by a forged sequence."""

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with (
            running(_egress({source: target}), listen=True) as egress,
            running(_ingress([source]), connect=[_endpoint(egress)]) as ingress,
        ):
            await until(lambda: egress.stats.peers == 1, "the real link")
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS, session=ingress.session)
            await until(lambda: egress.stats.disconnects["session_in_use"] == 1, "the impostor refused")
            writer.close()
            await send(_sender(), source, [_message(i) for i in range(50)])
            await until(lambda: len(receiver.received) == 50, "the real stream")
            assert egress.stats.peers == 1
        receiver.close()
        assert receiver.indexes() == list(range(50))

    _run(scenario)


def test_a_sequence_jump_past_the_bound_is_a_protocol_error_not_a_silent_filter() -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        group = group_to_int(source[0])

        def data(sequence: int) -> bytes:
            return encode(
                FrameType.DATA, _message(sequence % 1000), group=group, port=source[1], sequence=sequence
            )

        async with running(_egress({source: target}), listen=True) as egress:
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            writer.write(data(1) + data(2) + data(2**62) + data(3))
            await until(lambda: egress.stats.disconnects["protocol_error"] == 1, "the link closed")
            writer.close()
            await asyncio.sleep(0.1)
        receiver.close()
        assert receiver.indexes() == [1, 2]  # nothing of the forged sequence, nor after it

    _run(scenario)


# -- resume after an outage -----------------------------------------------------------------------


async def _outage(
    ingress: Ingress, *, before: int, during: int, after: int, size: int = 64
) -> tuple[Receiver, Egress]:
    """Stream ``before`` messages, cut the link, send ``during`` with nobody to take them, restore
    it, send ``after``; return what the receiver got once it has been quiet for a while."""
    source = ingress.groups[0]
    target = _random_group()
    receiver = Receiver(target)
    sender = _sender()
    egress = _egress({source: target})
    async with running(egress, listen=True):
        proxy = Proxy(_endpoint(egress))
        async with running(ingress, connect=[await proxy.start()]):
            await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the link")
            await send(sender, source, [_message(i, size) for i in range(before)])
            await until(lambda: len(receiver.received) == before, "the first messages")
            await proxy.cut()
            await until(lambda: ingress.stats.peers == 0 and egress.stats.peers == 0, "the cut")
            await send(sender, source, [_message(i, size) for i in range(before, before + during)])
            await asyncio.sleep(0.05)
            await proxy.restore()
            await until(lambda: ingress.stats.resumes == 1, "the resume")
            await send(
                sender, source, [_message(i, size) for i in range(before + during, before + during + after)]
            )
            previous = -1
            while previous != len(receiver.received):  # quiet for 0.3 s: all that will come came
                previous = len(receiver.received)
                await asyncio.sleep(0.3)
    receiver.close()
    return receiver, egress


def test_a_resume_beyond_the_replay_window_replays_what_it_kept_and_counts_the_rest() -> None:
    async def scenario() -> None:
        source = _random_group()
        ingress = _ingress([source], replay_bytes=20 * (HEADER_SIZE + 64 + ENTRY_OVERHEAD))
        receiver, egress = await _outage(ingress, before=50, during=60, after=30)
        stats = ingress.stats.groups[_label(source)]
        assert 0 < stats.replayed <= 20
        emitted = egress.stats.groups[_label(egress.mapping[source])]
        assert stats.unrecoverable == 60 - stats.replayed == emitted.gaps
        assert receiver.indexes() == [*range(50), *range(110 - stats.replayed, 140)]  # the newest kept

    _run(scenario)


def test_a_replay_larger_than_the_peer_queue_reaches_the_receiver_whole_and_in_order() -> None:
    """Through both relays: 1 MB missed with a 64 KiB --queue-bytes is no slow peer."""

    async def scenario() -> None:
        source = _random_group()
        ingress = _ingress([source], queue_bytes=64 * 1024)
        receiver, egress = await _outage(ingress, before=10, during=2000, after=100, size=512)
        assert receiver.indexes() == list(range(2110))
        assert ingress.stats.groups[_label(source)].replayed == 2000
        assert ingress.stats.disconnects["slow_peer"] == 0
        assert egress.stats.groups[_label(egress.mapping[source])].gaps == 0

    _run(scenario)


def test_an_egress_that_restarts_starts_fresh_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        sender = _sender()
        async with running(_ingress([source]), listen=True) as ingress:
            async with running(_egress({source: target}), connect=[_endpoint(ingress)]) as first:
                await until(lambda: ingress.stats.peers == 1, "the first egress")
                await send(sender, source, [_message(i) for i in range(50)])
                await until(lambda: len(receiver.received) == 50, "the first messages")
            await until(lambda: ingress.stats.peers == 0, "the first egress gone")
            await send(sender, source, [_message(i) for i in range(50, 80)])  # nobody takes these
            async with running(_egress({source: target}), connect=[_endpoint(ingress)]) as second:
                await until(lambda: ingress.stats.peers == 1, "the restarted egress")
                await asyncio.sleep(0.1)
                await send(sender, source, [_message(i) for i in range(80, 130)])
                await until(lambda: len(receiver.received) == 100, "the live stream")
            assert ingress.stats.resumes == first.stats.resumes == second.stats.resumes == 0
            assert ingress.stats.groups[_label(source)].replayed == 0
        receiver.close()
        assert receiver.indexes() == [*range(50), *range(80, 130)]

    with caplog.at_level(logging.INFO, logger="mcastkit.relay"):
        _run(scenario)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("first link since this egress started" in line for line in lines) == 2
    assert sum("starts fresh" in line for line in lines) == 2


@pytest.mark.parametrize(
    ("resume", "why"),
    [
        ("unknown_stream", "which this ingress does not join"),
        ("future_sequence", "past this ingress session's"),
        ("twice", "a second RESUME"),
        ("garbled", "not a multiple of 14"),
        ("fresh_naming_streams", "a fresh RESUME names streams"),
    ],
)
def test_a_resume_no_ingress_session_could_answer_closes_the_link(
    resume: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        source = _random_group()
        key = group_to_int(source[0]) << 16 | source[1]
        frames = {
            "unknown_stream": encode_resume({key + 1: 1}, known=True),
            "future_sequence": encode_resume({key: 5}, known=True),
            "twice": encode_resume({}, known=False) * 2,
            "fresh_naming_streams": encode(FrameType.RESUME, encode_resume({key: 1}, known=True)[32:]),
            "garbled": encode(FrameType.RESUME, b"x" * 15),
        }
        async with running(_ingress([source]), listen=True) as ingress:
            _reader, writer = await _raw_peer(_endpoint(ingress), role=Role.EGRESS, resume=frames[resume])
            await until(lambda: ingress.stats.disconnects["protocol_error"] == 1, "the link closed")
            writer.close()

    _run(scenario)
    assert any(why in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_an_egress_that_never_says_where_to_resume_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcastkit.relay.fanout.RESUME_TIMEOUT", 0.3)

    async def scenario() -> None:
        async with running(_ingress([_random_group()]), listen=True) as ingress:
            _reader, writer = await _raw_peer(_endpoint(ingress), role=Role.EGRESS, resume=b"")
            await until(lambda: ingress.stats.disconnects["no_resume"] == 1, "the link closed")
            writer.close()

    _run(scenario)


def test_a_replay_to_a_slow_reader_goes_as_its_socket_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay waits while the peer's transport is full and gives the loop back between
    shares: every datagram arrives once, in order, and the peer is never dropped as slow."""
    monkeypatch.setattr("mcastkit.relay.fanout.REPLAY_ENTRIES_PER_TURN", 8)
    turns = {"waits": 0, "all": 0}
    real = Ingress._replay

    def counting(self: Ingress, link: Link) -> None:
        turns["all"] += 1
        real(self, link)
        turns["waits"] += isinstance(link.context.timer, asyncio.TimerHandle)

    monkeypatch.setattr(Ingress, "_replay", counting)

    async def scenario() -> None:
        source = _random_group()
        key = group_to_int(source[0]) << 16 | source[1]
        async with running(_ingress([source], queue_bytes=64 * 1024), listen=True) as ingress:
            await send(_sender(), source, [_message(i, 1000) for i in range(6000)])
            await until(lambda: ingress.stats.groups[_label(source)].datagrams_in == 6000, "the window")
            reader, writer = await _raw_peer(
                _endpoint(ingress), role=Role.EGRESS, rcvbuf=4096, resume=encode_resume({key: 1}, known=True)
            )
            await asyncio.sleep(0.3)  # not reading: the ingress's transport fills up
            decoder, sequences = SealedDecoder(writer.keys.receive), []
            while len(sequences) < 6000:
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                assert chunk, "the ingress closed the link"
                sequences += [
                    seq for kind, _g, _p, _s, seq, _t, _d in decoder.feed(chunk) if kind == FrameType.DATA
                ]
            assert sequences == list(range(1, 6001))
            assert ingress.stats.groups[_label(source)].replayed == 6000
            assert ingress.stats.disconnects["slow_peer"] == 0 and ingress.stats.peers == 1
            writer.close()
        assert turns["waits"] > 0 and turns["all"] > turns["waits"]

    _run(scenario)


def test_a_frame_injected_on_the_path_is_never_emitted_and_the_stream_resumes_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Someone on the path (no secret) slips a DATA frame into the ingress's stream: the egress
    refuses it unsealed, closes the link, and the resume brings every real datagram, once."""
    caplog.set_level(logging.WARNING, logger="mcastkit.relay")

    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        sender = _sender()
        ingress, egress = _ingress([source]), _egress({source: target})
        armed = asyncio.Event()
        forged = encode(FrameType.DATA, b"FORGED", group=group_to_int(source[0]), port=source[1], sequence=51)

        def inject(data: bytes) -> bytes:
            if not armed.is_set():
                return data
            armed.clear()  # once
            return forged + data

        async with running(egress, listen=True):
            proxy = Proxy(_endpoint(egress), tamper=inject)
            async with running(ingress, connect=[await proxy.start()]):
                await until(lambda: egress.stats.peers == 1, "the link")
                await send(sender, source, [_message(i) for i in range(50)])
                await until(lambda: len(receiver.received) == 50, "the first messages")
                armed.set()
                await send(sender, source, [_message(i) for i in range(50, 100)])
                await until(lambda: egress.stats.disconnects["protocol_error"] == 1, "the link refused")
                await until(lambda: egress.stats.resumes == 1 and egress.stats.peers == 1, "the resume")
                await send(sender, source, [_message(i) for i in range(100, 150)])
                await until(lambda: len(receiver.received) >= 150, "every real datagram")
                await asyncio.sleep(0.1)
        receiver.close()
        assert b"FORGED" not in b"".join(receiver.received)
        assert receiver.indexes() == list(range(150))

    _run(scenario)
    assert any("integrity check failed" in r.getMessage() for r in caplog.records)


def test_a_stream_that_begins_during_the_outage_is_replayed_from_its_first_datagram() -> None:
    """The egress names only the streams it has seen; the ingress replays every other from where
    it stood when that egress first went live, so a stream born while the link was down (or
    whose first datagrams died with the link) is not skipped."""

    async def scenario() -> None:
        (quiet, quiet_target), (busy, busy_target) = _groups(), _groups()
        receivers = {quiet: Receiver(quiet_target), busy: Receiver(busy_target)}
        sender = _sender()
        ingress = _ingress([busy, quiet])
        egress = _egress({busy: busy_target, quiet: quiet_target})
        async with running(egress, listen=True):
            proxy = Proxy(_endpoint(egress))
            async with running(ingress, connect=[await proxy.start()]):
                await until(lambda: ingress.stats.peers == 1 and egress.stats.peers == 1, "the link")
                await send(sender, busy, [_message(i) for i in range(20)])
                await until(lambda: len(receivers[busy].received) == 20, "the busy stream")
                await proxy.cut()
                await until(lambda: ingress.stats.peers == 0 and egress.stats.peers == 0, "the cut")
                await send(sender, quiet, [_message(i) for i in range(30)])  # its first datagrams
                await proxy.restore()
                await until(lambda: egress.stats.resumes == 1 and ingress.stats.peers == 1, "the resume")
                await send(sender, quiet, [_message(i) for i in range(30, 40)])
                await until(lambda: len(receivers[quiet].received) == 40, "the quiet stream, whole")
                assert ingress.stats.groups[_label(quiet)].replayed == 30
                assert egress.stats.groups[_label(quiet_target)].gaps == 0
        for receiver in receivers.values():
            receiver.close()
        assert receivers[quiet].indexes() == list(range(40))

    _run(scenario)
