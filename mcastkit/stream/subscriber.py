"""The receiving end: :class:`Subscriber` joins a sequenced stream and delivers it in order,
exactly once, filling gaps by MoldUDP64 re-request or by SoupBinTCP replay.

An application uses it as ``mcastkit stream recv`` does::

    with Subscriber(group, interface, recovery=Retransmit(endpoint)) as subscriber:
        subscriber.run(lambda first, messages: handle(first, messages))

``run`` calls its callback with each run of consecutive messages (the first one's sequence
number and their bytes) and returns when the callback returns False, the session ends, or
:meth:`Subscriber.stop` is called.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mcastkit.net import mmsg
from mcastkit.net.addresses import Endpoint, GroupPort
from mcastkit.net.sockets import FEED_BUFFER_BYTES, open_receiver
from mcastkit.stream import mold
from mcastkit.stream.gaps import DEFAULT_GIVE_UP, Gaps
from mcastkit.stream.replay import ReplayError, replay

log = logging.getLogger(__name__)

Deliver = Callable[[int, list[bytes]], bool]
_SLOT = 65_535
#: Most messages one re-request asks for (the sequencer answers with up to 64 packets; the rest is asked
#: for as soon as that answer stops coming).
ASK_LIMIT = 4096


@dataclass(frozen=True)
class Retransmit:
    """Recover by MoldUDP64 re-request to ``endpoint`` (unicast UDP: inside the provider's VPC)."""

    endpoint: Endpoint


@dataclass(frozen=True)
class Replay:
    """Recover by SoupBinTCP replay from ``endpoint`` (TCP: through PrivateLink for a customer)."""

    endpoint: Endpoint


Recovery = Retransmit | Replay


class Subscriber:
    def __init__(
        self,
        group: GroupPort,
        interface: str,
        *,
        recovery: Recovery | None = None,
        start: int | None = None,
        session: str | None = None,
        give_up: float = DEFAULT_GIVE_UP,
        buffer_bytes: int = FEED_BUFFER_BYTES,
    ) -> None:
        self.recovery = recovery
        self.gaps = Gaps(start, give_up=give_up)
        self.session: bytes | None = mold.session_field(session) if session else None
        self.foreign = 0
        self.malformed = 0
        self.ended = False
        self._stop = threading.Event()
        self._sock = open_receiver(str(group.group), group.port, interface, buffer_bytes=buffer_bytes)
        self._slots = mmsg.DatagramSlots(self._sock, capacity=_SLOT, slots=64)
        self._asker: socket.socket | None = None
        if isinstance(recovery, Retransmit):
            self._asker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._asker.bind((interface, 0))
            self._asker.connect((recovery.endpoint.host, recovery.endpoint.port))
            self._asker.setblocking(False)
        self._replayed: queue.SimpleQueue[tuple[int, list[bytes]] | Exception] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._replaying = False
        self._catch_up = start is not None
        #: The first number the group itself carried: where a late joiner's replay can stop.
        self._live_first: int | None = None

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def stop(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")

    def close(self) -> None:
        self._stop.set()
        for sock in (self._sock, self._asker, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def run(self, deliver: Deliver, *, until: Callable[[], bool] = lambda: False) -> None:
        gaps = self.gaps
        poller = select.epoll()
        poller.register(self._sock.fileno(), select.EPOLLIN)
        poller.register(self._wake_r.fileno(), select.EPOLLIN)
        if self._asker is not None:
            poller.register(self._asker.fileno(), select.EPOLLIN)
        try:
            while not self._stop.is_set() and not until():
                now = time.monotonic()
                if self._catch_up and gaps.next is not None and isinstance(self.recovery, Replay):
                    self._catch_up = False  # a late joiner: replay from --from while the group is held
                    self._start_replay(gaps.next, None)
                for first, messages in gaps.ready():
                    if not deliver(first, messages):
                        return
                deadline = gaps.next_deadline()
                wait = 0.2 if deadline is None else min(0.2, max(0.0, deadline - now))
                for fd, _ in poller.poll(wait):
                    if fd == self._sock.fileno():
                        self._receive()
                    elif self._asker is not None and fd == self._asker.fileno():
                        self._answers()
                    else:
                        self._replay_results()
                self._ask(time.monotonic())
                if self.ended and not gaps.gaps and not self._replaying:
                    for first, messages in gaps.ready():
                        deliver(first, messages)
                    return
        finally:
            poller.close()

    # -- the group -------------------------------------------------------------------------

    def _receive(self) -> None:
        slots, view = self._slots, self._slots.view
        while True:
            received = slots.receive()
            if not received:
                return
            now = time.monotonic()
            for (offset, size, _count), (_length, truncated, _seg) in zip(
                slots.runs(received), received, strict=True
            ):
                if truncated:
                    self.malformed += 1
                    continue
                self._packet(view[offset : offset + size], now, recovered=False)

    def _answers(self) -> None:
        assert self._asker is not None
        while True:
            try:
                data = self._asker.recv(_SLOT)
            except BlockingIOError:
                return
            except OSError as err:  # ICMP unreachable: the retransmit service is not there (yet)
                log.debug("retransmit: %s", err.strerror)
                return
            self._packet(data, time.monotonic(), recovered=True)

    def _packet(self, data: bytes | memoryview, now: float, *, recovered: bool) -> None:
        try:
            packet = mold.decode(data)
        except mold.MoldError:
            self.malformed += 1
            return
        if self.session is None:
            self.session = packet.session
        elif packet.session != self.session:
            self.foreign += 1
            return
        if not recovered and self._live_first is None:
            self._live_first = packet.sequence
        if packet.end_of_session:
            self.gaps.heartbeat(packet.sequence, now)
            self.ended = True
        elif packet.messages:
            self.gaps.add(packet.sequence, packet.messages, now, recovered=recovered)
        else:
            self.gaps.heartbeat(packet.sequence, now)

    # -- recovery --------------------------------------------------------------------------

    def _ask(self, now: float) -> None:
        if self.recovery is None:
            self.gaps.due(now, limit=0)  # nothing to ask: only time the gaps out
            return
        if isinstance(self.recovery, Replay):
            if self._replaying:
                self.gaps.due(now, limit=0)
                return
            if self.gaps.due(now):
                # One session from the first missing number to the last: SoupBinTCP replays a
                # range, not a set, and a session per gap would queue one login behind another.
                start = self.gaps.gaps[0].start
                self._start_replay(start, self.gaps.high - start)
            return
        assert self._asker is not None
        if self.session is None:  # nothing heard yet, so nothing missing
            return
        for start, count in self.gaps.due(now, limit=ASK_LIMIT):
            try:
                self._asker.send(mold.encode_request(self.session, start, count))
            except OSError as err:
                log.debug("re-request: %s", err.strerror)

    def _start_replay(self, start: int, count: int | None) -> None:
        """Replay ``count`` messages from ``start`` (None: until the group's held messages)."""
        assert isinstance(self.recovery, Replay)
        endpoint = self.recovery.endpoint
        session = mold.session_name(self.session) if self.session else ""
        self._replaying = True

        def wanted(first: int, messages: list[bytes]) -> bool:
            # The server streams on past what is wanted: keep only that, then log out.
            live = self._live_first
            stop = start + count if count is not None else live
            if stop is not None:
                messages = messages[: max(0, stop - first)]
            if messages:
                self._replayed.put((first, messages))
                self._wake_w.send(b"r")
            end = first + len(messages)
            return not self._stop.is_set() and (stop is None or end < stop)

        def work() -> None:
            try:
                replay(endpoint, session, start, wanted, stop=self._stop)
            except (OSError, ReplayError) as err:
                self._replayed.put(err)
            finally:
                self._replayed.put(StopIteration())
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"r")

        threading.Thread(target=work, name="replay-fill", daemon=True).start()

    def _replay_results(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        now = time.monotonic()
        while True:
            try:
                item = self._replayed.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, StopIteration):
                self._replaying = False
            elif isinstance(item, Exception):
                log.warning("replay: %s", item)
            else:
                self.gaps.add(item[0], item[1], now, recovered=True)
