"""``relay egress --unicast``: a group's datagrams as unicast to listed receivers, on loopback.

A raw ingress feeds the egress hand-made frames (DATA, RUNs, a repeat, a gap), so what each
receiver must get, and what each counter must say, is known exactly.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from test_relay_link import (
    LOOPBACK,
    Receiver,
    _egress,
    _endpoint,
    _groups,
    _ingress,
    _label,
    _message,
    _raw_peer,
    _run,
    _sender,
    running,
    send,
    until,
)

from mcastkit.monitoring import emf
from mcastkit.net.mmsg import BatchSender
from mcastkit.relay.auth import Role
from mcastkit.relay.frame import FrameType, encode, group_to_int
from mcastkit.relay.metrics import emf_sampler, render

pytestmark = pytest.mark.timeout(60)


class UdpReceiver(Receiver):
    """A unicast receiver on loopback that collects what arrives, in the background."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((LOOPBACK, 0))
        sock.setblocking(False)
        self.address: tuple[str, int] = sock.getsockname()
        self._start(sock)


def _closed_port() -> tuple[str, int]:
    """A loopback port nobody listens on: its host answers port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()


class Frames:
    """Frames of one group, as an ingress would send them."""

    def __init__(self, group: tuple[str, int]) -> None:
        self.group, self.port = group_to_int(group[0]), group[1]

    def data(self, sequence: int, size: int = 64) -> bytes:
        return encode(
            FrameType.DATA, _message(sequence, size), group=self.group, port=self.port, sequence=sequence
        )

    def run(self, first: int, count: int, size: int = 64, last: int | None = None) -> bytes:
        datagrams = [_message(first + i, size) for i in range(count)]
        if last is not None:
            datagrams[-1] = datagrams[-1][:last]
        return encode(
            FrameType.RUN, b"".join(datagrams), group=self.group, port=self.port, segment=size, sequence=first
        )


def test_a_group_with_unicast_targets_reaches_each_in_order_instead_of_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flushes: list[tuple[int, int]] = []  # (datagrams, messages) of each flush that sent something
    real_flush = BatchSender.flush

    def flush(self: BatchSender) -> int:
        if self.count:
            flushes.append((self.count, self.messages))
        return real_flush(self)

    monkeypatch.setattr(BatchSender, "flush", flush)

    async def scenario() -> None:
        source, target = _groups()
        group = Receiver(target)
        first, second = UdpReceiver(), UdpReceiver()
        frames = Frames(source)
        egress = _egress({source: target}, allow=[target], unicast={target: [first.address, second.address]})
        # 1, 2, a run 3-12, 2 again, 20 (13-19 never came), a run 21-25 whose last is shorter
        wire = frames.data(1) + frames.data(2) + frames.run(3, 10) + frames.data(2)
        wire += frames.data(20, 1000) + frames.run(21, 5, last=10)
        expected = [_message(i) for i in range(1, 13)] + [_message(20, 1000)]
        expected += [_message(i) for i in range(21, 25)] + [_message(25)[:10]]
        async with running(egress, listen=True):
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            writer.write(wire)
            await until(lambda: len(first.received) == len(second.received) == 18, "both receivers")
            await asyncio.sleep(0.1)  # a datagram too many would arrive now
            writer.close()
        for receiver in (first, second):
            receiver.close()
            assert receiver.received == expected
        group.close()
        assert group.received == []  # unicast instead of multicast

        label = _label(target)
        stats = egress.stats.groups[label]
        assert (stats.datagrams_in, stats.duplicates, stats.gaps, stats.datagrams_in_runs) == (19, 1, 7, 15)
        assert stats.datagrams_out == 2 * 18  # a copy per target
        assert stats.bytes_out == 2 * sum(map(len, expected))
        for receiver in (first, second):
            counts = egress.stats.unicast[(label, f"{LOOPBACK}:{receiver.address[1]}")]
            assert (counts.datagrams_out, counts.bytes_out, sum(counts.drops.values())) == (
                18,
                sum(map(len, expected)),
                0,
            )
        text = render(egress.stats).decode()
        labels = f'group="{label}",target="{LOOPBACK}:{first.address[1]}"'
        assert f"mcastkit_relay_unicast_datagrams_out_total{{{labels}}} 18.0" in text
        # Each target's socket took each run of the batch as one UDP GSO message.
        assert any(datagrams > messages for datagrams, messages in flushes)
        sample = emf_sampler(egress.stats)()
        assert (sample[emf.Relay.DATAGRAMS_OUT], sample[emf.Relay.DROPS]) == (36, 0)

    _run(scenario)


def test_a_refusing_target_is_counted_by_reason_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nobody listens on one target's port: its host answers port unreachable, the connected
    socket reports it on a later send, and that copy is dropped; the link and the other
    targets carry on, and one log line covers the lot."""
    caplog.set_level(logging.WARNING, logger="mcastkit.relay")

    async def scenario() -> None:
        source, target = _groups()
        first, second = UdpReceiver(), UdpReceiver()
        closed = _closed_port()
        frames = Frames(source)
        egress = _egress(
            {source: target}, allow=[target], unicast={target: [first.address, closed, second.address]}
        )
        rounds, per_round = 5, 30
        async with running(egress, listen=True):
            _reader, writer = await _raw_peer(_endpoint(egress), role=Role.INGRESS)
            for n in range(rounds):  # one write each, taken in turn: a send after a refusal in each
                base = 1 + n * per_round
                writer.write(b"".join(frames.data(base + i) for i in range(20)) + frames.run(base + 20, 10))
                done = (n + 1) * per_round
                await until(lambda d=done: len(first.received) == len(second.received) == d, f"round {n + 1}")
            assert egress.stats.peers == 1
            writer.close()
        first.close()
        second.close()
        expected = [_message(i) for i in range(1, rounds * per_round + 1)]
        assert first.received == second.received == expected

        label = _label(target)
        refused = egress.stats.unicast[(label, f"{LOOPBACK}:{closed[1]}")]
        assert refused.drops["unicast_refused"] > 0
        assert refused.datagrams_out + refused.drops["unicast_refused"] == rounds * per_round
        assert egress.stats.drops == {"unicast_refused": refused.drops["unicast_refused"]}
        stats = egress.stats.groups[label]
        assert stats.datagrams_out == 2 * rounds * per_round + refused.datagrams_out

    _run(scenario)
    lines = [r.getMessage() for r in caplog.records if "unicast to" in r.getMessage()]
    assert len(lines) == 1 and "Connection refused" in lines[0] and "the other targets go on" in lines[0]


def test_an_ingress_stream_reaches_a_unicast_receiver_through_the_relay() -> None:
    """The same through a real ingress: its resume and heartbeats are untouched by --unicast."""

    async def scenario() -> None:
        source, target = _groups()
        receiver = UdpReceiver()
        messages = [_message(i) for i in range(200)]
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(
                _egress({source: target}, allow=[target], unicast={target: [receiver.address]}),
                connect=[_endpoint(ingress)],
            ),
        ):
            await until(lambda: ingress.stats.peers == 1, "the link")
            await send(_sender(), source, messages)
            await until(lambda: len(receiver.received) == 200, "the stream")
        receiver.close()
        assert receiver.received == messages

    _run(scenario)
