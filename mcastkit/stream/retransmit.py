"""Answers MoldUDP64 re-requests from the journal, unicast, within a byte budget.

Storms are cut at both ends: receivers wait a random back-off before asking (see
:mod:`mcastkit.stream.gaps`), and here a request that repeats one answered to the same
address within :data:`REPEAT_WINDOW` is suppressed, and answers stop when the second's
byte budget is spent (the receiver asks again after its back-off).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mcastkit.stream import mold
from mcastkit.stream.journal import Journal

log = logging.getLogger(__name__)

#: A request for the same range from the same address within this many seconds is a repeat.
REPEAT_WINDOW = 0.05
#: Packets one request is answered with at most; a receiver asks again for the rest.
MAX_PACKETS_PER_REQUEST = 64
DEFAULT_BYTES_PER_SECOND = 50 * 1024 * 1024


@dataclass
class RetransmitCounts:
    requests: int = 0
    answered: int = 0
    #: Repeats of a request just answered.
    suppressed: int = 0
    #: Over the byte budget: not answered now.
    throttled: int = 0
    #: Another session, a malformed packet, or a range not in the journal.
    refused: int = 0
    messages: int = 0


class Retransmitter:
    def __init__(
        self,
        sock: socket.socket,
        journal: Journal,
        session: bytes,
        *,
        packet_bytes: int,
        bytes_per_second: int = DEFAULT_BYTES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sock = sock
        self.journal = journal
        self.session = session
        self.packet_bytes = packet_bytes
        self.rate = bytes_per_second
        self.counts = RetransmitCounts()
        self._clock = clock
        self._budget = float(bytes_per_second)
        self._refilled = clock()
        self._recent: dict[tuple[tuple[str, int], int, int], float] = {}

    def serve_waiting(self) -> None:
        """Answer every request waiting on the socket."""
        while True:
            try:
                data, peer = self.sock.recvfrom(64)
            except BlockingIOError:
                return
            except OSError as err:  # an ICMP error for an earlier answer: the requester left
                log.debug("retransmit socket: %s", err.strerror)
                continue
            self.handle(data, peer)

    def handle(self, data: bytes, peer: tuple[str, int]) -> None:
        self.counts.requests += 1
        try:
            session, sequence, count = mold.decode_request(data)
        except mold.MoldError:
            self.counts.refused += 1
            return
        end = self.journal.next_sequence
        if session != self.session or count == 0 or sequence < self.journal.first_sequence or sequence >= end:
            self.counts.refused += 1
            return
        now = self._clock()
        key = (peer, sequence, count)
        if now - self._recent.get(key, -1.0) < REPEAT_WINDOW:
            self.counts.suppressed += 1
            return
        self._refill(now)
        if self._budget <= 0:
            self.counts.throttled += 1
            return
        messages = self.journal.read(sequence, min(count, end - sequence))
        answers = mold.packets(self.session, sequence, messages, self.packet_bytes)[:MAX_PACKETS_PER_REQUEST]
        for answer in answers:
            try:
                self.sock.sendto(answer, peer)
            except OSError as err:
                log.debug("answer to %s:%d: %s", peer[0], peer[1], err.strerror)
                break
            self._budget -= len(answer)
            self.counts.messages += mold.HEADER.unpack_from(answer)[2]
        self.counts.answered += 1
        if len(self._recent) > 4096:
            self._recent = {k: t for k, t in self._recent.items() if now - t < REPEAT_WINDOW}
        self._recent[key] = now

    def _refill(self, now: float) -> None:
        self._budget = min(float(self.rate), self._budget + (now - self._refilled) * self.rate)
        self._refilled = now
