"""The egress relay: takes the stream from an ingress and re-emits it as multicast in AWS.

Groups with ``--unicast`` targets go as unicast to those receivers instead
(:mod:`mcastkit.relay.unicast`); with ``--serve`` the egress also serves what it takes to the
egresses below it (:mod:`mcastkit.relay.downstream`).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

from mcastkit.errors import EnvironmentFailure
from mcastkit.net.limits import MAX_DATAGRAM
from mcastkit.net.mmsg import BATCH, BatchSender, Destination, buffer_address, run_datagrams
from mcastkit.net.sockets import DEFAULT_BUFFER_BYTES, open_sender
from mcastkit.relay.auth import Role
from mcastkit.relay.downstream import Downstream
from mcastkit.relay.frame import (
    MAX_RESUME_STREAMS,
    MAX_SEQUENCE_JUMP,
    FrameError,
    FrameType,
    encode_resume,
    int_to_group,
)
from mcastkit.relay.link import Link, RelayNode
from mcastkit.relay.metrics import GroupStats, RelayStats
from mcastkit.relay.throttle import Throttle
from mcastkit.relay.tls import TlsContexts
from mcastkit.relay.unicast import REFUSED, Target, open_unicast_sender

log = logging.getLogger("mcastkit.relay")

#: Sequence state is kept for this many ingress sessions (an ingress restart starts a new one).
MAX_SESSIONS = 16
#: Streams (group and port) one session may open when no allow-list bounds them: an ingress that
#: names ever new groups must not grow the egress's state and metrics without end.
MAX_STREAMS = 1024
#: 224.0.0.0/24 carries IGMP, mDNS, routing protocols: never a feed's group.
_LINK_LOCAL = ipaddress.IPv4Network("224.0.0.0/24")

DATA, RUN = int(FrameType.DATA), int(FrameType.RUN)
HEARTBEAT, BYE = int(FrameType.HEARTBEAT), int(FrameType.BYE)


class _Stream:
    """Where one (group, port) of one ingress session goes (a group, or its unicast ``targets``),
    and the next sequence expected."""

    __slots__ = ("destination", "next_sequence", "stats", "targets")

    def __init__(
        self, destination: Destination | None, stats: GroupStats, targets: tuple[Target, ...] = ()
    ) -> None:
        self.destination = destination
        self.next_sequence = 0
        self.stats = stats
        self.targets = targets


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
        unicast: Mapping[tuple[str, int], Sequence[tuple[str, int]]] | None = None,
        downstream: Downstream | None = None,
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
        #: per emitted group, the receivers it goes to as unicast instead of as multicast
        self.unicast: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {
            (group, port): tuple((address, to) for address, to in targets)
            for (group, port), targets in (unicast or {}).items()
        }
        if self.allow is not None and (unallowed := set(self.unicast) - self.allow):
            raise ValueError(f"unicast groups that are not allowed: {sorted(unallowed)}")
        self._targets: dict[tuple[str, int], tuple[Target, ...]] = {}
        #: what the egresses below this one are served (``--serve``), or None
        self.downstream = downstream
        if downstream is not None:
            stats.downstream = downstream.stats
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
        """Create the sending sockets now, so a bad interface or unicast target fails at start."""
        try:
            self._sock = open_sender(
                self.interface, ttl=self.ttl, loop=self.multicast_loop, buffer_bytes=self.buffer_bytes
            )
            self._batch = BatchSender(self._sock, self._send_failed)
            for (group, port), receivers in self.unicast.items():
                label, targets = f"{group}:{port}", []
                for address, to in receivers:
                    sock = open_unicast_sender(address, to, buffer_bytes=self.buffer_bytes)
                    targets.append(
                        Target(
                            sock,
                            address,
                            to,
                            stats=self.stats.group(label),
                            counts=self.stats.target(label, f"{address}:{to}"),
                            on_error=self._unicast_failed,
                        )
                    )
                self._targets[(group, port)] = tuple(targets)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._batch = None
        for targets in self._targets.values():
            for target in targets:
                target.sock.close()
        self._targets.clear()

    async def run(self, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]) -> None:
        if self._sock is None:
            self.open()
        try:
            if self.downstream is None:
                await super().run(listen=listen, connect=connect)
            else:
                await self._run_serving(self.downstream, listen=listen, connect=connect)
        finally:
            self.close()

    async def _run_serving(
        self, downstream: Downstream, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]
    ) -> None:
        """Serve the egresses below (listening before the first link up, so ``ready`` means both),
        and stop serving after the link up has drained: what had arrived is relayed."""
        serving = asyncio.create_task(downstream.run(listen=downstream.address, connect=[]))
        listening = asyncio.create_task(downstream.ready.wait())
        try:
            await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
            if serving.done():
                try:
                    serving.result()
                except OSError as err:
                    host, port = downstream.address
                    why = os.strerror(err.errno) if err.errno else str(err)  # not asyncio's long wording
                    raise EnvironmentFailure(f"--serve {host}:{port}: {why}") from err
            else:
                log.info(
                    "serving downstream egresses as session %016x (new at every start: the egresses "
                    "below start fresh)",
                    downstream.session,
                )
                await super().run(listen=listen, connect=connect)
        finally:
            listening.cancel()
            downstream.stop()
            await asyncio.gather(serving, listening, return_exceptions=True)

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
        stats = self.stats.group(f"{target[0]}:{target[1]}")
        if targets := self._targets.get(target):
            return _Stream(None, stats, targets), ""
        return _Stream(Destination(*target), stats), ""

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
        if self.downstream is not None:
            self.downstream.follow(link.session)
            if known:  # and what it relays (all it takes, whatever --allow says); never past either
                for key, sequence in self.downstream.positions().items():
                    wanted[key] = min(wanted.get(key, sequence), sequence)
                wanted = dict(list(wanted.items())[:MAX_RESUME_STREAMS])  # the rest from where it joined
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
                "ingress session %016x is new (the ingress, or the egress relaying it to this one, "
                "restarted): its streams start again at the live stream; what was in flight before is "
                "not recovered",
                link.session,
            )

    def receive(self, link: Link, data: bytes) -> str | None:
        """Emit the datagrams of every DATA and RUN frame of the chunk as multicast (or as unicast
        to a group's targets), batched into few system calls (a RUN's datagrams as one UDP GSO
        message where the kernel takes it); with ``--serve``, relay each frame downstream too."""
        streams: dict[int, _Stream] = link.context
        batch = self._batch
        assert batch is not None
        drops = self.stats.drops
        buffer, frames = link.decoder.feed_spans(data)
        base = buffer_address(buffer)
        newest_ns = 0
        relay = self.downstream
        if relay is not None and relay.upstream != link.session:
            relay = None  # only the session followed is relayed (see mcastkit.relay.downstream)
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
                if relay is not None:  # every stream, before this egress's --map and --allow
                    relay.take(
                        frame_type, group, port, segment, sequence, received_ns, count, buffer, start, stop
                    )
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
                size = stop - start
                if (size if frame_type == DATA else segment) > MAX_DATAGRAM:
                    drops["oversize"] += count
                    continue
                newest_ns = received_ns
                if stream.targets:
                    self._to_targets(stream.targets, frame_type, base + start, segment, size, count)
                    continue
                destination = stream.destination
                assert destination is not None  # refused streams are never stored
                if frame_type == DATA:
                    batch.add(base + start, size, destination, stream)
                else:
                    batch.add_run(base + start, segment, size, destination, stream)
                stats.datagrams_out += count
                stats.bytes_out += size
                if batch.count >= BATCH:
                    batch.flush()
        finally:
            # while ``buffer``, which the batches point into, is still referenced
            batch.flush()
            for targets in self._targets.values():
                for target in targets:
                    if target.batch.count:
                        target.batch.flush()
            if relay is not None:
                relay.flush()
            if newest_ns:
                self.stats.transit_ns = time.time_ns() - newest_ns
        return None

    @staticmethod
    def _to_targets(
        targets: tuple[Target, ...], frame_type: int, address: int, segment: int, size: int, count: int
    ) -> None:
        """Queue a DATA (``count`` 1) or RUN frame's datagrams to each unicast target; each copy
        counts in the group's ``datagrams_out`` and the target's."""
        for target in targets:
            target_batch = target.batch
            if frame_type == DATA:
                target_batch.add(address, size, target.destination, target)
            else:
                target_batch.add_run(address, segment, size, target.destination, target)
            counts, stats = target.counts, target.stats
            counts.datagrams_out += count
            counts.bytes_out += size
            stats.datagrams_out += count
            stats.bytes_out += size
            if target_batch.count >= BATCH:
                target_batch.flush()

    def _unicast_failed(self, code: int, target: Target, size: int) -> None:
        """The kernel refused a copy to a unicast target: a drop by reason, for that target only."""
        reason = REFUSED if code == errno.ECONNREFUSED else "send_error"
        counts, stats = target.counts, target.stats
        counts.datagrams_out -= 1
        counts.bytes_out -= size
        counts.drops[reason] += 1
        stats.datagrams_out -= 1
        stats.bytes_out -= size
        self.stats.drops[reason] += 1
        self._throttle.warning(
            f"{reason} {target.label}",
            "unicast to %s failed: %s (counted in drops{reason=%s}; the other targets go on)",
            target.label,
            os.strerror(code),
            reason,
        )

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
