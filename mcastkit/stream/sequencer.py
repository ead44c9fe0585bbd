"""The sequencer: numbers every datagram of its input groups, journals it, then publishes it.

One thread does the hot path, in this order for each batch the kernel hands over: receive
(``recvmmsg``), append to the journal (one write; with ``--fsync always`` also
``fdatasync``), publish as MoldUDP64 packets of at most ``packet_bytes``. A message is
never on the wire before it is in the journal, so anything a receiver saw can be
recovered. The same thread answers MoldUDP64 re-requests and sends a heartbeat after every
second with nothing to publish; SoupBinTCP replay runs in threads of its own.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mcastkit.monitoring import emf
from mcastkit.net import mmsg
from mcastkit.net.addresses import Endpoint, GroupPort
from mcastkit.net.limits import MAX_DATAGRAM
from mcastkit.net.sockets import (
    DEFAULT_BUFFER_BYTES,
    FEED_BUFFER_BYTES,
    SocketSetupError,
    open_receiver,
    open_sender,
)
from mcastkit.stream import mold
from mcastkit.stream.journal import Journal
from mcastkit.stream.replay import ReplayServer
from mcastkit.stream.retransmit import Retransmitter

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 1.0
#: (A receiving thread of its own, to keep draining the input sockets while a journal write waits,
#: was measured: GIL hand-overs per batch cost 3-8 times the CPU per message. The input sockets
#: get FEED_BUFFER_BYTES instead.)


@dataclass
class SequencerCounts:
    messages: int = 0
    packets: int = 0
    heartbeats: int = 0
    #: Datagrams longer than a packet can carry: not sequenced (never published, never journaled).
    too_big: int = 0
    send_errors: int = 0
    by_input: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SequencerSettings:
    inputs: Sequence[GroupPort]
    interface: str
    output: GroupPort
    session: bytes
    ttl: int = 8
    packet_bytes: int = MAX_DATAGRAM
    retransmit: Endpoint | None = None
    replay: Endpoint | None = None
    buffer_bytes: int = FEED_BUFFER_BYTES


class Sequencer:
    def __init__(self, settings: SequencerSettings, journal: Journal) -> None:
        self.settings = settings
        self.journal = journal
        self.counts = SequencerCounts()
        self.largest = mold.max_message(settings.packet_bytes)
        self._inputs: list[tuple[socket.socket, mmsg.DatagramSlots, str]] = []
        self._sockets: list[socket.socket] = []
        self.retransmitter: Retransmitter | None = None
        self.replay: ReplayServer | None = None
        self._last_sent = 0.0
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        s = self.settings
        for group in s.inputs:
            sock = open_receiver(str(group.group), group.port, s.interface, buffer_bytes=s.buffer_bytes)
            self._sockets.append(sock)
            # One byte more than the largest message: a longer datagram shows up as truncated.
            self._inputs.append((sock, mmsg.DatagramSlots(sock, capacity=self.largest + 1), str(group)))
            self.counts.by_input[str(group)] = 0
        self._out = open_sender(s.interface, ttl=s.ttl, loop=False, buffer_bytes=DEFAULT_BUFFER_BYTES,
                                connect=(str(s.output.group), s.output.port))  # fmt: skip
        self._sockets.append(self._out)
        if s.retransmit is not None:
            sock = _bind_udp(s.retransmit)
            self._sockets.append(sock)
            self.retransmitter = Retransmitter(sock, self.journal, s.session, packet_bytes=s.packet_bytes)
        if s.replay is not None:
            try:
                self.replay = ReplayServer(self.journal, s.session, s.replay)
            except OSError as err:
                raise SocketSetupError(err.errno, f"--replay {s.replay}: {err.strerror}") from None

    def run(self, *, until: Callable[[], bool] = lambda: False) -> None:
        """Sequence until ``until()`` is true (checked at least every heartbeat)."""
        if self.replay is not None:
            self.replay.start()
        poller = select.epoll()
        handlers: dict[int, Callable[[], None]] = {}
        for sock, slots, name in self._inputs:
            handlers[sock.fileno()] = self._reader(slots, name)
        if self.retransmitter is not None:
            handlers[self.retransmitter.sock.fileno()] = self.retransmitter.serve_waiting
        for fd in handlers:
            poller.register(fd, select.EPOLLIN)
        self._last_sent = time.monotonic()
        try:
            while not until():
                for fd, _ in poller.poll(0.2):
                    handlers[fd]()
                if time.monotonic() - self._last_sent >= HEARTBEAT_EVERY:
                    self._send(mold.heartbeat(self.settings.session, self.journal.next_sequence))
                    self.counts.heartbeats += 1
        finally:
            poller.close()

    def _reader(self, slots: mmsg.DatagramSlots, name: str) -> Callable[[], None]:
        view, largest, stride = slots.view, self.largest, slots.stride

        def read() -> None:
            while True:
                received = slots.receive()
                if not received:
                    return
                messages = []
                # One datagram a slot (the input sockets do not ask for GRO runs).
                for index, (size, truncated, _segment) in enumerate(received):
                    if truncated or size > largest:
                        self.counts.too_big += 1
                        continue
                    start = index * stride
                    messages.append(bytes(view[start : start + size]))
                if messages:
                    self.counts.by_input[name] += len(messages)
                    self.publish(messages)

        return read

    def publish(self, messages: list[bytes]) -> int:
        """Journal ``messages``, then send them; the first one's sequence number."""
        first = self.journal.append(messages)
        self.counts.messages += len(messages)
        for packet in mold.packets(self.settings.session, first, messages, self.settings.packet_bytes):
            self._send(packet)
            self.counts.packets += 1
        return first

    def _send(self, packet: bytes) -> None:
        try:
            self._out.send(packet)
        except OSError as err:  # the receivers recover it from the journal
            self.counts.send_errors += 1
            log.warning("publish: %s", err.strerror)
        self._last_sent = time.monotonic()

    def close(self) -> None:
        if self.replay is not None:
            self.replay.stop()
        for sock in self._sockets:
            sock.close()


def emf_sampler(sequencer: Sequencer) -> Callable[[], dict[emf.Metric, float]]:
    """What ``--emf`` publishes each interval: the counts since the last call."""
    deltas = emf.Deltas()
    m = emf.Sequencer

    def sample() -> dict[emf.Metric, float]:
        counts = sequencer.counts
        retransmitted = sequencer.retransmitter.counts.messages if sequencer.retransmitter else 0
        totals = {
            m.MESSAGES: counts.messages,
            m.PACKETS: counts.packets,
            m.SEND_ERRORS: counts.send_errors,
            m.TOO_BIG: counts.too_big,
            m.RETRANSMITTED: retransmitted,
        }
        return dict(deltas.since_last(totals))

    return sample


def _bind_udp(endpoint: Endpoint) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((endpoint.host, endpoint.port))
    except OSError as err:
        sock.close()
        raise SocketSetupError(err.errno, f"--retransmit {endpoint}: {err.strerror}") from None
    sock.setblocking(False)
    return sock
