"""The ingress relay: joins groups on the datacenter side and streams them to every egress peer."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from mcastkit.net.limits import MAX_DATAGRAM, TGW_MTU
from mcastkit.net.mmsg import DatagramSlots, run_datagrams
from mcastkit.net.sockets import open_receiver
from mcastkit.relay.auth import Role
from mcastkit.relay.frame import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    MAX_RUN,
    VERSION,
    FrameError,
    FrameType,
    decode_resume,
    group_to_int,
    int_to_group,
)
from mcastkit.relay.link import Link, RelayNode
from mcastkit.relay.metrics import GroupStats, RelayStats
from mcastkit.relay.tls import TlsContexts
from mcastkit.relay.window import DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_SECONDS, ReplayWindow, frames_from

log = logging.getLogger("mcastkit.relay")

DEFAULT_QUEUE_BYTES = 16 * 1024 * 1024
DATA, RUN = int(FrameType.DATA), int(FrameType.RUN)
#: Receive slots per group; each holds a datagram or a coalesced run of them (up to 64 KiB),
#: so a group's receive buffer in the relay is about 4 MiB.
SLOTS = 64
#: Rides out a scheduling stall of a few hundred ms at 100k msg/s (needs root beyond rmem_max).
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024
#: Read at most this many batches per wakeup, then let the other groups' sockets have their turn
#: (1,024 datagrams where the kernel coalesced none).
MAX_BATCHES_PER_WAKEUP = 16
#: While a peer has a backlog, check this often how far its socket has taken it (``datagrams_out``).
SETTLE_SECONDS = 0.05
#: A peer must say where to resume (RESUME, empty when it starts fresh) this soon after the handshake.
RESUME_TIMEOUT = 5.0
#: A replay waits while the peer's transport holds this much (or half ``--queue-bytes``).
REPLAY_QUEUE_BYTES = 4 * 1024 * 1024
#: Window entries a replay looks at before the event loop takes other work (the live groups).
REPLAY_ENTRIES_PER_TURN = 512
#: While a replay waits for the peer's socket, it looks again this often.
REPLAY_POLL_SECONDS = 0.002
RESUME = int(FrameType.RESUME)
#: Egress sessions whose starting point the ingress remembers (a resume of an older one replays
#: only the streams it names).
MAX_EGRESS_SESSIONS = 64


class _Peer:
    """What the ingress keeps per peer link.

    ``chunks``: the batches handed to its transport that its socket may not have taken yet, each
    (end, datagrams, payload bytes, group stats); ``end`` is the offset in the link's byte
    stream (:attr:`Link.bytes_given`) just past the batch and its seal, so the transport's write
    buffer size says exactly which batches are on the socket.

    Until its RESUME arrives and the replay has caught up, the peer is not live: it takes the
    stream from the replay window, where ``wanted`` says the next sequence it needs per stream
    and ``cursor`` the next window entry to look at.
    """

    __slots__ = ("chunks", "cursor", "finished", "replayed", "started", "timer", "unrecoverable", "wanted")

    def __init__(self) -> None:
        self.chunks: deque[tuple[int, int, int, GroupStats]] = deque()
        self.finished = False
        self.wanted: dict[int, int] | None = None
        self.cursor = 0
        self.replayed = 0
        self.unrecoverable = 0
        self.started = 0.0
        self.timer: asyncio.Handle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(eq=False)
class _Source:
    sock: socket.socket
    receiver: DatagramSlots
    group: int
    port: int
    stats: GroupStats
    label: str
    sequence: int = 0


class Ingress(RelayNode):
    role = Role.INGRESS

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
        super().__init__(secret=secret, stats=stats, heartbeat=heartbeat, max_peers=max_peers, tls=tls)
        self.groups = groups
        self.interface = interface
        self.queue_bytes = queue_bytes
        #: a replay waits above this, so the live stream that follows it fits the queue
        self._replay_queue = min(REPLAY_QUEUE_BYTES, queue_bytes // 2)
        self.buffer_bytes = buffer_bytes
        self._sources: list[_Source] = []
        #: each source by its stream key (``group << 16 | port``), as frames and RESUME name it
        self._by_key: dict[int, _Source] = {}
        self.window = ReplayWindow(max_bytes=replay_bytes, max_seconds=replay_seconds)
        #: peers that take the stream as it arrives (the others are still catching up, or waiting)
        self._live: tuple[Link, ...] = ()
        #: per egress session, the next sequence of each stream when it first went live here
        self._joined: OrderedDict[int, dict[int, int]] = OrderedDict()
        self._oversize_logged = 0.0
        self._settle_timer: asyncio.TimerHandle | None = None

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
            if self._settle_timer is not None:
                self._settle_timer.cancel()
                self._settle_timer = None
            self.close()

    async def before_drain(self) -> None:
        """Stop reading; a peer still waiting or replaying gets nothing more (what it lacks
        stays unsent: it was never live); the live ones get what had already arrived."""
        for link in self.links:
            peer: _Peer = link.context
            if link not in self._live:
                peer.cancel_timer()
                peer.finished = True
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

    def _send(self, chunk: bytes, count: int, total: int, stats: GroupStats) -> None:
        """Offer one batch to every peer; account for each copy (see "Counters" in :mod:`mcastkit.relay`)."""
        offered = 0
        for link in self._live:
            transport = link.transport
            if transport.is_closing():
                continue  # going away; its connection_lost will unregister it
            offered += 1
            if transport.get_write_buffer_size() + len(chunk) > self.queue_bytes:
                self.stats.drops["slow_peer_queue"] += count
                self._drop_slow(link)
                continue
            link.write(chunk)
            peer: _Peer = link.context
            unsent = transport.get_write_buffer_size()
            if not unsent and not peer.chunks:  # the socket took all of it: the usual case
                stats.datagrams_out += count
                stats.bytes_out += total
                continue
            peer.chunks.append((link.bytes_given, count, total, stats))
            self.stats.queued += count
            self._settle(link, unsent)
            if peer.chunks and self._settle_timer is None:
                self._settle_timer = asyncio.get_running_loop().call_later(SETTLE_SECONDS, self._settle_all)
        if offered:
            stats.datagrams_due += count * offered
        else:
            stats.datagrams_due += count
            self.stats.drops["no_peer"] += count

    def _settle(self, link: Link, unsent: int) -> None:
        """Count as sent the chunks the socket has taken all of (``unsent`` bytes are still queued)."""
        chunks = link.context.chunks
        written = link.bytes_given - unsent
        while chunks and chunks[0][0] <= written:
            _end, count, total, stats = chunks.popleft()
            stats.datagrams_out += count
            stats.bytes_out += total
            self.stats.queued -= count

    def _settle_all(self) -> None:
        self._settle_timer = None
        waiting = False
        for link in self.links:
            peer: _Peer = link.context
            if peer.chunks and not peer.finished:
                self._settle(link, link.transport.get_write_buffer_size())
                waiting = waiting or bool(peer.chunks)
        if waiting:
            self._settle_timer = asyncio.get_running_loop().call_later(SETTLE_SECONDS, self._settle_all)

    def _finish(self, link: Link, unsent: int | None, reason: str) -> int:
        """The link is ending: the batches its socket took whole, seal included, count as out; the
        rest as ``drops[reason]`` (the egress acts on no frame of a batch whose seal it lacks).

        ``unsent`` is what the transport still holds, or None when it is unknown (the connection
        failed and its queue is gone): then only what was already seen on the socket counts as out.
        Returns how many datagrams were discarded.
        """
        peer: _Peer = link.context
        if peer is None or peer.finished:
            return 0
        peer.finished = True
        if unsent is not None:
            self._settle(link, unsent)
        discarded = 0
        chunks = peer.chunks
        while chunks:
            _end, count, _total, _stats = chunks.popleft()
            discarded += count
            self.stats.queued -= count
        if discarded:
            self.stats.drops[reason] += discarded
        return discarded

    def link_up(self, link: Link) -> None:
        peer = link.context = _Peer()
        link.on_abort = self._aborting
        peer.timer = asyncio.get_running_loop().call_later(RESUME_TIMEOUT, self._no_resume, link)

    def _no_resume(self, link: Link) -> None:
        link.context.timer = None
        log.warning("peer %s did not say where to resume within %g s; closing", link.name, RESUME_TIMEOUT)
        link.abort("no_resume")

    def _aborting(self, link: Link) -> None:
        self._finish(link, link.transport.get_write_buffer_size(), "link_lost_queue")

    def link_down(self, link: Link) -> None:
        self._live = tuple(other for other in self._live if other is not link)
        link.context.cancel_timer()
        unsent = None if link.connection.error is not None else link.transport.get_write_buffer_size()
        if discarded := self._finish(link, unsent, "link_lost_queue"):
            log.warning(
                "peer %s: %d datagram(s) in its queue were not sent (counted in drops; a resume "
                "within the replay window takes them again)",
                link.name,
                discarded,
            )

    # -- resume ----------------------------------------------------------------------------------

    def _resume(self, link: Link, known: bool, named: dict[int, int]) -> None:
        """The peer's RESUME: replay from the window what it missed, then make it live.

        A peer that knows this session gets the streams it names from where it says, and every
        other from where it stood when that peer (its egress session) first went live here: a
        stream that began during the outage, or whose first datagrams died with the link, is
        not skipped. A fresh peer takes the live stream from now on.
        """
        peer: _Peer = link.context
        if peer.wanted is not None:
            raise FrameError("a second RESUME on one link")
        for key, sequence in named.items():
            source = self._by_key.get(key)
            if source is None:
                raise FrameError(f"RESUME names {_stream_label(key)}, which this ingress does not join")
            if sequence > source.sequence + 1:
                raise FrameError(
                    f"RESUME asks for {source.label} from {sequence}, past this ingress session's "
                    f"{source.sequence}"
                )
        peer.cancel_timer()
        if not known:
            peer.wanted = {}
            log.info("peer %s starts fresh: it takes the stream from now on", link.name)
            self._go_live(link, fresh=True)
            return
        joined = self._joined.get(link.session)
        if joined is None:
            log.warning(
                "peer %s resumes a session this ingress has no record of it in (more than %d egress "
                "sessions since): only the %d stream(s) it names are replayed",
                link.name,
                MAX_EGRESS_SESSIONS,
                len(named),
            )
        wanted = peer.wanted = {**(joined or {}), **named}
        self.stats.resumes += 1
        peer.cursor = self.window.start
        peer.started = time.monotonic()
        log.info("peer %s resumes %d stream(s): replaying what it missed", link.name, len(wanted))
        self._replay(link)

    def _replay(self, link: Link) -> None:
        """Write the window's entries the peer wants, a share at a time, without overfilling its
        transport; once at the window's end, the peer goes live."""
        peer: _Peer = link.context
        peer.timer = None
        if peer.finished or link.transport.is_closing():
            return
        window, wanted, transport = self.window, peer.wanted, link.transport
        assert wanted is not None
        loop = asyncio.get_running_loop()
        index = max(peer.cursor, window.start)  # what was evicted meanwhile shows as a jump below
        stop = min(window.end, index + REPLAY_ENTRIES_PER_TURN)
        while index < stop:
            if transport.get_write_buffer_size() >= self._replay_queue:
                peer.cursor = index
                peer.timer = loop.call_later(REPLAY_POLL_SECONDS, self._replay, link)
                return
            key, first, count, _received_ns, chunk = window[index]
            index += 1
            want = wanted.get(key)
            end = first + count
            if want is None or end <= want:
                continue
            stats = self._by_key[key].stats
            if first > want:  # older than the window
                stats.unrecoverable += first - want
                peer.unrecoverable += first - want
            elif first < want:
                chunk = frames_from(chunk, want)
                count = end - want
            link.write(chunk)
            stats.replayed += count
            peer.replayed += count
            wanted[key] = end
        peer.cursor = index
        if index < window.end:
            peer.timer = loop.call_soon(self._replay, link)
            return
        for key, want in wanted.items():  # streams with nothing left in the window
            source = self._by_key[key]
            if (missing := source.sequence + 1 - want) > 0:
                source.stats.unrecoverable += missing
                peer.unrecoverable += missing
        log.log(
            logging.WARNING if peer.unrecoverable else logging.INFO,
            "peer %s resumed: %d datagram(s) replayed in %.2f s, %d no longer in the replay window "
            "(counted in unrecoverable)",
            link.name,
            peer.replayed,
            time.monotonic() - peer.started,
            peer.unrecoverable,
        )
        self._go_live(link, fresh=False)

    def _go_live(self, link: Link, *, fresh: bool) -> None:
        """Put the peer on the live stream; a fresh one is recorded as starting here, per stream
        (what a later resume of its egress session replays the streams it does not name from)."""
        self._live = (*self._live, link)
        joined = self._joined
        if fresh or link.session not in joined:
            joined[link.session] = {key: source.sequence + 1 for key, source in self._by_key.items()}
        joined.move_to_end(link.session)
        while len(joined) > MAX_EGRESS_SESSIONS:
            joined.popitem(last=False)

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

    def _drop_slow(self, link: Link) -> None:
        queued = link.transport.get_write_buffer_size()
        self.links = tuple(other for other in self.links if other is not link)
        self._live = tuple(other for other in self._live if other is not link)
        self.stats.peers = len(self.links)
        discarded = self._finish(link, queued, "slow_peer_queue")
        log.warning(
            "peer %s is %d bytes behind (--queue-bytes %d): dropped with %d queued datagram(s) "
            "(counted in drops)",
            link.name,
            queued,
            self.queue_bytes,
            discarded,
        )
        link.abort("slow_peer")

    def receive(self, link: Link, data: bytes) -> str | None:
        """An egress sends one RESUME, then only heartbeats and BYE; anything else is a protocol error."""
        for frame_type, _group, _port, _segment, sequence, _time_ns, payload in link.decoder.feed(data):
            if frame_type == RESUME:
                self._resume(link, *decode_resume(sequence, payload))
            elif frame_type == FrameType.BYE:
                return "peer_closed"
            elif frame_type != FrameType.HEARTBEAT:
                raise FrameError(f"unexpected {FrameType(frame_type).name} frame from an egress")
        return None


def _stream_label(key: int) -> str:
    return f"{int_to_group(key >> 16)}:{key & 0xFFFF}"
