"""What an egress with ``--serve`` serves the egresses below it: a relay tree (datacenter, London, Tokyo).

The egress takes the stream from its ingress and, besides emitting it, hands every DATA and RUN
frame it takes to :class:`Downstream`, which serves them as an ingress serves what it reads
(:class:`~mcastkit.relay.fanout.Fanout`: bounded queues, a slow peer dropped, the replay window,
RESUME). The frames go on as the ingress framed them: the same group and port (before this
egress's ``--map``; a downstream egress maps and allows for itself), the same sequence numbers
and the ingress's receive time, so an egress further down counts gaps against the ingress's
numbering and its transit time from the ingress.

Sessions: a downstream egress keys what it has seen by the session id in its upstream's HELLO,
and sequence numbers start again with every ingress session. So this side has a session id of
its own (random at every start: an egress that restarts is a new session, and the egresses
below it start fresh), and draws a new one when the ingress it relays is a new session (the
ingress restarted): it closes the downstream links (``disconnects{reason=upstream_session}``),
forgets the window, and the egresses below come back to a session they do not know and start
fresh, as they would under a restarted ingress. While the link to the same ingress session is
down and resumes, nothing changes here: the downstream links stay up on their heartbeats, and
what the ingress replays to this egress is relayed to them in order, as new.

Only the ingress session this egress links to last is relayed (the command line takes one
upstream; a second link's frames are emitted here but not relayed).
"""

from __future__ import annotations

import logging
import secrets
import time

from mcastkit.relay.fanout import DEFAULT_QUEUE_BYTES, Fanout, Stream
from mcastkit.relay.frame import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_SEQUENCE_JUMP,
    VERSION,
    FrameError,
    FrameType,
    int_to_group,
)
from mcastkit.relay.metrics import RelayStats
from mcastkit.relay.tls import TlsContexts
from mcastkit.relay.window import DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_SECONDS, ReplayWindow

log = logging.getLogger("mcastkit.relay")

RUN = int(FrameType.RUN)
#: Streams relayed in one session: an ingress that names ever new groups must not grow this
#: side's state without end (what the egress allows locally does not bound what it relays).
MAX_STREAMS = 1024


class _Piece:
    """Frames of one stream taken from one TCP read, in order and without a gap: one window entry."""

    __slots__ = ("bytes", "count", "first", "frames", "stream")

    def __init__(self, stream: Stream, first: int) -> None:
        self.stream = stream
        self.first = first
        self.count = 0
        self.bytes = 0
        self.frames: list[bytes | memoryview] = []


class Downstream(Fanout):
    """Serves the egresses below this one what it takes from its ingress, numbers unchanged."""

    not_carried = "which this egress has not relayed in its session"
    not_reached = "past what this egress has relayed:"
    listening_log = "serving downstream egresses on %s:%d"

    def __init__(
        self,
        *,
        address: tuple[str, int],
        secret: bytes,
        stats: RelayStats,
        heartbeat: float = 1.0,
        max_peers: int = 32,
        tls: TlsContexts | None = None,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
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
        #: where the egresses below connect (``--serve``)
        self.address = address
        #: the ingress session relayed (None until the first link to an ingress)
        self.upstream: int | None = None
        self._pieces: dict[int, _Piece] = {}
        self._too_many_logged = False

    def follow(self, session: int) -> None:
        """The egress linked to ingress session ``session``; relay it. A session other than the
        one relayed so far starts a new session here (see the module docs)."""
        if session == self.upstream:
            return
        previous, self.upstream = self.upstream, session
        if previous is None:
            log.info(
                "relaying ingress session %016x to downstream egresses as session %016x",
                session,
                self.session,
            )
            return
        self.session = secrets.randbits(64)
        window = self.window
        self.window = ReplayWindow(max_bytes=window.max_bytes, max_seconds=window.max_ns / 1e9)
        self._by_key.clear()
        self._joined.clear()
        self._pieces.clear()
        self._too_many_logged = False
        log.warning(
            "ingress session %016x replaces %016x (the ingress restarted): serving downstream egresses "
            "as new session %016x; the %d linked now are closed and start fresh",
            session,
            previous,
            self.session,
            len(self.links),
        )
        for link in self.links:
            link.abort("upstream_session")

    def positions(self) -> dict[int, int]:
        """Per stream relayed, the next sequence number wanted from the ingress."""
        return {key: stream.sequence + 1 for key, stream in self._by_key.items()}

    def take(
        self,
        frame_type: int,
        group: int,
        port: int,
        segment: int,
        sequence: int,
        received_ns: int,
        count: int,
        buffer: bytes,
        start: int,
        stop: int,
    ) -> None:
        """A DATA or RUN frame of ``count`` datagrams, its payload ``buffer[start:stop]`` and its
        header just before it: relayed as it is, less what was relayed already. :meth:`flush`
        sends what was taken, while ``buffer`` is still referenced."""
        key = group << 16 | port
        stream = self._by_key.get(key)
        if stream is None:
            if len(self._by_key) >= MAX_STREAMS:
                self._too_many(key, count)
                return
            label = f"{int_to_group(group)}:{port}"
            stream = self._by_key[key] = Stream(label, self.stats.group(label), first=sequence)
        stats = stream.stats
        last = stream.sequence
        if sequence <= last:  # relayed already: all of it, or the start of a run
            repeated = min(count, last + 1 - sequence)
            stats.duplicates += repeated
            count -= repeated
            if not count:
                return
            start += repeated * segment
            sequence = last + 1
            header = HEADER.pack(
                MAGIC, VERSION, RUN, stop - start, group, port, segment, sequence, received_ns
            )
            frame: bytes | memoryview = header + buffer[start:stop]
        else:
            if last and sequence - last > MAX_SEQUENCE_JUMP:
                raise FrameError(f"sequence of {stream.label} jumps from {last} to {sequence}")
            frame = memoryview(buffer)[start - HEADER_SIZE : stop]
        piece = self._pieces.get(key)
        if piece is not None and sequence != last + 1:  # a gap: a window entry holds none
            self._send_piece(key, piece, time.time_ns())
            piece = None
        if piece is None:
            piece = self._pieces[key] = _Piece(stream, sequence)
        piece.frames.append(frame)
        piece.count += count
        piece.bytes += stop - start
        stream.sequence = sequence + count - 1
        stats.datagrams_in += count
        stats.bytes_in += stop - start
        if frame_type == RUN:
            stats.datagrams_in_runs += count

    def flush(self) -> None:
        """Keep and send what :meth:`take` took since the last flush, a window entry per stream."""
        if not self._pieces:
            return
        now_ns = time.time_ns()
        for key, piece in self._pieces.items():
            self._send_piece(key, piece, now_ns)
        self._pieces.clear()

    def _send_piece(self, key: int, piece: _Piece, now_ns: int) -> None:
        chunk = b"".join(piece.frames)
        self.window.keep(key, piece.first, piece.count, now_ns, chunk)
        self._send(chunk, piece.count, piece.bytes, piece.stream.stats)

    def _too_many(self, key: int, count: int) -> None:
        self.stats.drops["too_many_groups"] += count
        if not self._too_many_logged:
            self._too_many_logged = True
            log.warning(
                "ingress sent %s:%d, past %d streams in one session: not relayed downstream "
                "(drops{reason=too_many_groups} counts every datagram)",
                int_to_group(key >> 16),
                key & 0xFFFF,
                MAX_STREAMS,
            )
