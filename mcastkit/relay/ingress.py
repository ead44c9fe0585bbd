"""The ingress relay: joins groups on the datacenter side and streams them to every egress peer."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Sequence

from mcastkit.net.limits import MAX_DATAGRAM, TGW_MTU
from mcastkit.net.mmsg import DatagramSlots, run_datagrams
from mcastkit.net.sockets import open_receiver
from mcastkit.relay.fanout import DEFAULT_QUEUE_BYTES, Fanout, Stream
from mcastkit.relay.frame import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    MAX_RUN,
    VERSION,
    FrameType,
    group_to_int,
)
from mcastkit.relay.metrics import GroupStats, RelayStats
from mcastkit.relay.tls import TlsContexts
from mcastkit.relay.window import DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_SECONDS

log = logging.getLogger("mcastkit.relay")

DATA, RUN = int(FrameType.DATA), int(FrameType.RUN)
#: Receive slots per group; each holds a datagram or a coalesced run of them (up to 64 KiB),
#: so a group's receive buffer in the relay is about 4 MiB.
SLOTS = 64
#: Rides out a scheduling stall of a few hundred ms at 100k msg/s (needs root beyond rmem_max).
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024
#: Read at most this many batches per wakeup, then let the other groups' sockets have their turn
#: (1,024 datagrams where the kernel coalesced none).
MAX_BATCHES_PER_WAKEUP = 16


class _Source(Stream):
    """A joined group: its socket and receive slots, and the sequence numbers given so far."""

    __slots__ = ("group", "port", "receiver", "sock")

    def __init__(
        self,
        sock: socket.socket,
        receiver: DatagramSlots,
        group: int,
        port: int,
        stats: GroupStats,
        label: str,
    ) -> None:
        super().__init__(label, stats)
        self.sock = sock
        self.receiver = receiver
        self.group = group
        self.port = port


class Ingress(Fanout):
    """Joins the groups and serves what arrives on them to every egress peer (:class:`Fanout`)."""

    def __init__(
        self,
        *,
        groups: Sequence[tuple[str, int]],
        interface: str,
        secret: bytes,
        stats: RelayStats,
        heartbeat: float = 1.0,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        buffer_bytes: int = RECEIVE_BUFFER_BYTES,
        max_peers: int = 32,
        tls: TlsContexts | None = None,
        replay_bytes: int = DEFAULT_REPLAY_BYTES,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
    ) -> None:
        super().__init__(
            secret=secret,
            stats=stats,
            heartbeat=heartbeat,
            max_peers=max_peers,
            tls=tls,
            queue_bytes=queue_bytes,
            replay_bytes=replay_bytes,
            replay_seconds=replay_seconds,
        )
        self.groups = groups
        self.interface = interface
        self.buffer_bytes = buffer_bytes
        self._sources: list[_Source] = []
        self._oversize_logged = 0.0

    def open(self) -> None:
        """Join every group now, so a bad interface or group fails at start."""
        try:
            for group, port in self.groups:
                sock = open_receiver(group, port, self.interface, buffer_bytes=self.buffer_bytes)
                label = f"{group}:{port}"
                granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports double
                if granted < self.buffer_bytes - 1:  # the kernel may round down by one
                    log.warning(
                        "%s: receive buffer is %d bytes, not %d: bursts may be lost "
                        "(run as root, or raise net.core.rmem_max)",
                        label,
                        granted,
                        self.buffer_bytes,
                    )
                receiver = DatagramSlots(
                    sock, capacity=MAX_PAYLOAD + 1, headroom=HEADER_SIZE, slots=SLOTS, coalesce=True
                )
                source = _Source(sock, receiver, group_to_int(group), port, self.stats.group(label), label)
                self._sources.append(source)
                self._by_key[source.group << 16 | port] = source
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for source in self._sources:
            source.sock.close()
        self._sources.clear()
        self._by_key.clear()

    async def run(self, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]) -> None:
        if not self._sources:
            self.open()
        loop = asyncio.get_running_loop()
        for source in self._sources:
            loop.add_reader(source.sock.fileno(), self._on_readable, source)
        try:
            await super().run(listen=listen, connect=connect)
        finally:
            self.close()

    async def before_drain(self) -> None:
        """Stop reading; the live peers get what had already arrived (:meth:`Fanout.before_drain`)."""
        await super().before_drain()
        loop = asyncio.get_running_loop()
        for source in self._sources:
            loop.remove_reader(source.sock.fileno())
            while self._on_readable(source):  # forward what had already arrived
                pass

    def _on_readable(self, source: _Source) -> int:
        """Read the waiting datagrams in batches; frame each batch, write it once to each peer.

        A single datagram is framed in place (DATA, its header in the slot's headroom); a run the
        kernel coalesced (UDP GRO) goes as RUN frames of up to :data:`MAX_RUN` datagrams, each
        taking the next sequence numbers. Returns how many messages were read.
        """
        receiver = source.receiver
        buffer = receiver.buffer
        view = memoryview(buffer)
        stride = receiver.stride
        pack_into, pack = HEADER.pack_into, HEADER.pack
        now_ns = time.time_ns
        group = source.group
        port = source.port
        key = group << 16 | port
        stats = source.stats
        keep = self.window.keep
        read = 0
        for _ in range(MAX_BATCHES_PER_WAKEUP):
            try:
                results = receiver.receive()
            except OSError as err:
                log.warning("receive on %s failed: %s", source.label, err)
                return read
            if not results:
                return read
            read += len(results)
            sequence = before = source.sequence
            received_ns = now_ns()  # one read: every datagram of the batch was taken just now
            frames: list[bytes | memoryview] = []
            count = total = oversize = in_runs = 0
            for index, (size, truncated, segment) in enumerate(results):
                offset = index * stride
                if segment and size > segment:
                    if truncated or size > MAX_PAYLOAD or segment > MAX_DATAGRAM:
                        oversize += run_datagrams(size, segment)
                        continue
                    # A RUN keeps the shorter last datagram (unlike DatagramSlots.runs, which sets it apart).
                    start = offset + HEADER_SIZE
                    for first in range(0, size, segment * MAX_RUN):
                        part = view[start + first : start + min(size, first + segment * MAX_RUN)]
                        frames += (
                            pack(
                                MAGIC,
                                VERSION,
                                RUN,
                                len(part),
                                group,
                                port,
                                segment,
                                sequence + 1,
                                received_ns,
                            ),
                            part,
                        )
                        sequence += run_datagrams(len(part), segment)
                    in_runs += run_datagrams(size, segment)
                    total += size
                    continue
                if truncated or size > MAX_DATAGRAM:
                    oversize += 1
                    continue
                sequence += 1
                pack_into(buffer, offset, MAGIC, VERSION, DATA, size, group, port, 0, sequence, received_ns)
                frames.append(view[offset : offset + HEADER_SIZE + size])
                count += 1
                total += size
            count += in_runs
            stats.datagrams_in_runs += in_runs
            source.sequence = sequence
            if oversize:
                self._count_oversize(source, oversize)
            stats.datagrams_in += count
            stats.bytes_in += total
            if count:
                chunk = b"".join(frames)
                keep(key, before + 1, count, received_ns, chunk)
                self._send(chunk, count, total, stats)
            if len(results) < SLOTS:
                return read
        return read

    def _count_oversize(self, source: _Source, count: int) -> None:
        self.stats.drops["oversize"] += count
        now = time.monotonic()
        if now - self._oversize_logged > 10.0:
            self._oversize_logged = now
            log.warning(
                "dropped %d datagram(s) on %s larger than %d bytes (TGW MTU %d); counted in drops",
                count,
                source.label,
                MAX_DATAGRAM,
                TGW_MTU,
            )
