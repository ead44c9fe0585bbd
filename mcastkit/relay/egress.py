"""The egress relay: takes the stream from an ingress and re-emits it as multicast in AWS."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Collection

from mcastkit.net.limits import MAX_DATAGRAM
from mcastkit.net.mmsg import BATCH, BatchSender, Destination, buffer_address, run_datagrams
from mcastkit.net.sockets import DEFAULT_BUFFER_BYTES, open_sender
from mcastkit.relay.auth import Role
from mcastkit.relay.frame import MAX_RESUME_STREAMS, FrameError, FrameType, encode_resume, int_to_group
from mcastkit.relay.link import Link, RelayNode
from mcastkit.relay.metrics import GroupStats, RelayStats
from mcastkit.relay.throttle import Throttle
from mcastkit.relay.tls import TlsContexts

log = logging.getLogger("mcastkit.relay")

#: Sequence state is kept for this many ingress sessions (an ingress restart starts a new one).
MAX_SESSIONS = 16
#: Streams (group and port) one session may open when no allow-list bounds them: an ingress that
#: names ever new groups must not grow the egress's state and metrics without end.
MAX_STREAMS = 1024
#: A sequence number this far past the next expected is no gap but a forged or broken stream
#: (2**40 is 30 hours at 10 million datagrams a second).
MAX_SEQUENCE_JUMP = 2**40
#: 224.0.0.0/24 carries IGMP, mDNS, routing protocols: never a feed's group.
_LINK_LOCAL = ipaddress.IPv4Network("224.0.0.0/24")

DATA, RUN = int(FrameType.DATA), int(FrameType.RUN)
HEARTBEAT, BYE = int(FrameType.HEARTBEAT), int(FrameType.BYE)


class _Stream:
    """Where one (group, port) of one ingress session goes, and the next sequence expected."""

    __slots__ = ("destination", "next_sequence", "stats")

    def __init__(self, destination: Destination | None, stats: GroupStats) -> None:
        self.destination = destination
        self.next_sequence = 0
        self.stats = stats


class Egress(RelayNode):
    role = Role.EGRESS

    def __init__(
        self,
        *,
        interface: str,
        ttl: int,
        secret: bytes,
        stats: RelayStats,
        mapping: dict[tuple[str, int], tuple[str, int]] | None = None,
        allow: Collection[tuple[str, int]] | None = None,
        heartbeat: float = 1.0,
        loop: bool = True,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        max_peers: int = 8,
        tls: TlsContexts | None = None,
    ) -> None:
        super().__init__(secret=secret, stats=stats, heartbeat=heartbeat, max_peers=max_peers, tls=tls)
        self.interface = interface
        self.ttl = ttl
        self.mapping = mapping or {}
        #: The only (group, port) destinations emitted; ``None``: any data group, at most
        #: ``MAX_STREAMS`` per session (the command line always gives a list). A RESUME must be
        #: able to name every stream kept.
        self.allow = frozenset(allow) if allow is not None else None
        if self.allow is not None and len(self.allow) > MAX_RESUME_STREAMS:
            raise ValueError(f"{len(self.allow)} allowed groups; at most {MAX_RESUME_STREAMS}")
        self.multicast_loop = loop
        self.buffer_bytes = buffer_bytes
        self._sock: socket.socket | None = None
        self._batch: BatchSender | None = None
        self._sessions: OrderedDict[int, dict[int, _Stream]] = OrderedDict()
        #: Where every refused datagram is counted: one stream, one metrics label, however many
        #: groups the ingress names.
        self._refused = _Stream(None, stats.group("refused"))
        self._throttle = Throttle(log)

    def open(self) -> None:
        """Create the sending socket now, so a bad interface fails at start."""
        self._sock = open_sender(
            self.interface, ttl=self.ttl, loop=self.multicast_loop, buffer_bytes=self.buffer_bytes
        )
        self._batch = BatchSender(self._sock, self._send_failed)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._batch = None

    async def run(self, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]) -> None:
        if self._sock is None:
            self.open()
        try:
            await super().run(listen=listen, connect=connect)
        finally:
            self.close()

    def _streams(self, session: int) -> dict[int, _Stream]:
        """The state of an ingress session, made if new; past MAX_SESSIONS the one used least
        recently goes, never one a link is using."""
        sessions = self._sessions
        streams = sessions.get(session)
        if streams is None:
            streams = sessions[session] = {}
            linked = {link.session for link in self.links} | {session}
            for old in [s for s in sessions if s not in linked][: max(0, len(sessions) - MAX_SESSIONS)]:
                del sessions[old]
        else:
            sessions.move_to_end(session)
        return streams

    def _new_stream(self, streams: dict[int, _Stream], group: int, port: int) -> tuple[_Stream, str]:
        """The stream of a (group, port) this session has not sent before, or the refused stream
        and the reason (a drop counter); only allowed streams keep state."""
        address = int_to_group(group)
        label = f"{address}:{port}"
        target = self.mapping.get((address, port), (address, port))
        emitted = ipaddress.IPv4Address(target[0])
        if not emitted.is_multicast:
            return self._refuse(label, "not_multicast", "is not a multicast group")
        if emitted in _LINK_LOCAL:
            return self._refuse(label, "link_local", "is in 224.0.0.0/24, link-local control")
        if self.allow is not None and target not in self.allow:
            return self._refuse(label, "not_allowed", "is not an --allow group")
        if self.allow is None and len(streams) >= MAX_STREAMS:
            return self._refuse(label, "too_many_groups", f"is past {MAX_STREAMS} groups in one session")
        # Counted under the group emitted here (a --map target), which is what this side's
        # receivers and alarms know; refusals keep the group the ingress sent.
        return _Stream(Destination(*target), self.stats.group(f"{target[0]}:{target[1]}")), ""

    def _refuse(self, label: str, reason: str, why: str) -> tuple[_Stream, str]:
        self._throttle.warning(
            reason,
            "ingress sent %s, which %s: not emitted (drops{reason=%s} counts every one)",
            label,
            why,
            reason,
        )
        return self._refused, reason

    def link_up(self, link: Link) -> None:
        """Tell the ingress where each of its streams stopped (RESUME), so it replays what the
        outage lost before the live stream (streams this egress never saw from where they stood
        when it first took the session); a session this egress has no state for starts fresh."""
        known = link.session in self._sessions
        first_link = not self._sessions
        streams = link.context = self._streams(link.session)
        wanted = {key: stream.next_sequence for key, stream in streams.items() if stream.next_sequence}
        link.write(encode_resume(wanted, known=known))
        if known:
            self.stats.resumes += 1
            log.info(
                "ingress session %016x: resuming %d stream(s) where they stopped, any other from where "
                "it stood when this egress first took the session",
                link.session,
                len(wanted),
            )
        elif first_link:
            log.info(
                "first link since this egress started: taking the live stream of ingress session %016x "
                "(nothing to resume; what an earlier egress process missed is not recovered)",
                link.session,
            )
        else:
            log.warning(
                "ingress session %016x is new (the ingress restarted): its streams start again at the "
                "live stream; what was in flight before is not recovered",
                link.session,
            )

    def receive(self, link: Link, data: bytes) -> str | None:
        """Emit the datagrams of every DATA and RUN frame of the chunk as multicast, batched into
        few system calls (a RUN's datagrams as one UDP GSO message where the kernel takes it)."""
        streams: dict[int, _Stream] = link.context
        batch = self._batch
        assert batch is not None
        drops = self.stats.drops
        buffer, frames = link.decoder.feed_spans(data)
        base = buffer_address(buffer)
        newest_ns = 0
        try:
            for frame_type, group, port, segment, sequence, received_ns, start, stop in frames:
                if frame_type == DATA:
                    segment = count = 1
                elif frame_type == RUN:
                    count = run_datagrams(stop - start, segment)
                else:
                    if frame_type == HEARTBEAT:
                        continue
                    if frame_type == BYE:
                        return "peer_closed"
                    raise FrameError(f"unexpected {FrameType(frame_type).name} frame from an ingress")
                key = group << 16 | port
                stream = streams.get(key)
                if stream is None:
                    stream, refusal = self._new_stream(streams, group, port)
                    if refusal:
                        drops[refusal] += count
                        self._refused.stats.datagrams_in += count
                        continue
                    streams[key] = stream
                stats = stream.stats
                stats.datagrams_in += count
                if frame_type == RUN:
                    stats.datagrams_in_runs += count
                stats.bytes_in += stop - start
                expected = stream.next_sequence
                if sequence != expected and expected:
                    if sequence - expected > MAX_SEQUENCE_JUMP:
                        raise FrameError(
                            f"sequence of {int_to_group(group)}:{port} jumps from {expected} to {sequence}"
                        )
                    if sequence < expected:  # a repeat (of part of a run: the rest is new)
                        repeated = min(count, expected - sequence)
                        stats.duplicates += repeated
                        self._throttle.warning(
                            "duplicates",
                            "%s repeats datagrams of %s:%d already emitted (counted in duplicates)",
                            link.name,
                            int_to_group(group),
                            port,
                        )
                        count -= repeated
                        if not count:
                            continue
                        start += repeated * segment
                        sequence = expected
                    else:
                        stats.gaps += sequence - expected
                stream.next_sequence = sequence + count
                destination = stream.destination
                assert destination is not None  # refused streams are never stored
                size = stop - start
                if (size if frame_type == DATA else segment) > MAX_DATAGRAM:
                    drops["oversize"] += count
                    continue
                if frame_type == DATA:
                    batch.add(base + start, size, destination, stream)
                else:
                    batch.add_run(base + start, segment, size, destination, stream)
                stats.datagrams_out += count
                stats.bytes_out += size
                newest_ns = received_ns
                if batch.count >= BATCH:
                    batch.flush()
        finally:
            batch.flush()  # while ``buffer``, which the batch points into, is still referenced
            if newest_ns:
                self.stats.transit_ns = time.time_ns() - newest_ns
        return None

    def _send_failed(self, code: int, stream: _Stream, size: int) -> None:
        stats, destination = stream.stats, stream.destination
        assert destination is not None
        stats.datagrams_out -= 1
        stats.bytes_out -= size
        self.stats.drops["send_error"] += 1
        self._throttle.warning(
            "send_error",
            "send to %s:%d failed: %s (counted in drops)",
            destination.address,
            destination.port,
            os.strerror(code),
        )
