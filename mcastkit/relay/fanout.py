"""Serving a stream to egress peers: a bounded queue per peer, the replay window, resume, slow peers.

The ingress serves what it reads from multicast (:mod:`mcastkit.relay.ingress`); an egress with
``--serve`` serves what it takes from its ingress to the egresses below it
(:mod:`mcastkit.relay.downstream`). Both hand this class batches already framed, one stream's
datagrams in sequence order; everything from there on is the same: each batch is kept in the
replay window and written to every live peer, a peer further than ``--queue-bytes`` behind is
dropped (``slow_peer``) without slowing the others, and a peer that comes back says where each
stream stopped (RESUME) and is replayed the rest before it goes live (see "Resume" and
"Counters" in :mod:`mcastkit.relay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque

from mcastkit.relay.auth import Role
from mcastkit.relay.frame import FrameError, FrameType, decode_resume, int_to_group
from mcastkit.relay.link import Link, RelayNode
from mcastkit.relay.metrics import GroupStats, RelayStats
from mcastkit.relay.tls import TlsContexts
from mcastkit.relay.window import DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_SECONDS, ReplayWindow, frames_from

log = logging.getLogger("mcastkit.relay")

DEFAULT_QUEUE_BYTES = 16 * 1024 * 1024
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
    """What a fanout keeps per peer link.

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


class Stream:
    """One (group, port) a fanout sends: its counters, and the sequence numbers it has sent,
    ``first`` to ``sequence`` (the ingress numbers from 1; a relaying egress from the first it took)."""

    __slots__ = ("first", "label", "sequence", "stats")

    def __init__(self, label: str, stats: GroupStats, first: int = 1) -> None:
        self.label = label
        self.stats = stats
        self.first = first
        self.sequence = first - 1


class Fanout(RelayNode):
    """Serves a stream to egress peers, as an ingress does (subclasses feed it with :meth:`_send`
    and :meth:`ReplayWindow.keep`, and fill :attr:`_by_key`)."""

    role = Role.INGRESS
    #: how a RESUME this relay cannot answer is explained: the stream is not one it...
    not_carried = "which this ingress does not join"
    #: ...or the sequence is past...
    not_reached = "past this ingress session's"

    def __init__(
        self,
        *,
        secret: bytes,
        stats: RelayStats,
        heartbeat: float,
        max_peers: int,
        tls: TlsContexts | None,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        replay_bytes: int = DEFAULT_REPLAY_BYTES,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
    ) -> None:
        super().__init__(secret=secret, stats=stats, heartbeat=heartbeat, max_peers=max_peers, tls=tls)
        self.queue_bytes = queue_bytes
        #: a replay waits above this, so the live stream that follows it fits the queue
        self._replay_queue = min(REPLAY_QUEUE_BYTES, queue_bytes // 2)
        #: each stream by its key (``group << 16 | port``), as frames and RESUME name it
        self._by_key: dict[int, Stream] = {}
        self.window = ReplayWindow(max_bytes=replay_bytes, max_seconds=replay_seconds)
        #: peers that take the stream as it arrives (the others are still catching up, or waiting)
        self._live: tuple[Link, ...] = ()
        #: per egress session, the next sequence of each stream when it first went live here
        self._joined: OrderedDict[int, dict[int, int]] = OrderedDict()
        self._settle_timer: asyncio.TimerHandle | None = None

    async def run(self, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]) -> None:
        try:
            await super().run(listen=listen, connect=connect)
        finally:
            if self._settle_timer is not None:
                self._settle_timer.cancel()
                self._settle_timer = None

    async def before_drain(self) -> None:
        """A peer still waiting or replaying gets nothing more (what it lacks stays unsent: it was
        never live); the live ones get what had already arrived."""
        for link in self.links:
            peer: _Peer = link.context
            if link not in self._live:
                peer.cancel_timer()
                peer.finished = True

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
        other from where it stood when that peer (its egress session) first went live here (a
        stream first sent after that, from its first datagram): a stream that began during the
        outage, or whose first datagrams died with the link, is not skipped. A fresh peer takes
        the live stream from now on.
        """
        peer: _Peer = link.context
        if peer.wanted is not None:
            raise FrameError("a second RESUME on one link")
        for key, sequence in named.items():
            stream = self._by_key.get(key)
            if stream is None:
                raise FrameError(f"RESUME names {_stream_label(key)}, {self.not_carried}")
            if sequence > stream.sequence + 1:
                raise FrameError(
                    f"RESUME asks for {stream.label} from {sequence}, {self.not_reached} {stream.sequence}"
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
                "peer %s resumes a session this relay has no record of it in (more than %d egress "
                "sessions since): only the %d stream(s) it names are replayed",
                link.name,
                MAX_EGRESS_SESSIONS,
                len(named),
            )
        since = {} if joined is None else {key: joined.get(key, s.first) for key, s in self._by_key.items()}
        wanted = peer.wanted = {**since, **named}
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
            stream = self._by_key[key]
            if (missing := stream.sequence + 1 - want) > 0:
                stream.stats.unrecoverable += missing
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
            joined[link.session] = {key: stream.sequence + 1 for key, stream in self._by_key.items()}
        joined.move_to_end(link.session)
        while len(joined) > MAX_EGRESS_SESSIONS:
            joined.popitem(last=False)

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
