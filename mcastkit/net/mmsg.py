"""sendmmsg(2) and recvmmsg(2) through ctypes: one system call for a batch of datagrams (Linux).

A ``sendto``/``recv`` per datagram costs a system call each; at a hundred thousand datagrams
a second and more, the calls, and the kernel's per-packet trip through its stack (and, on a
receiving host, the wake-ups), not the copying, are what the relay and the probe spend their
time on.

- :class:`DatagramSlots`: a buffer cut into fixed slots, received into with ``recvmmsg`` (the
  ingress relay, the probe receiver); optionally with UDP GRO, where the kernel hands over a
  run of equal-size datagrams from one sender as one message;
- :class:`BatchSender`: datagrams anywhere in memory, each to its own destination, sent with
  ``sendmmsg``; runs of equal-size datagrams to one destination go as one UDP GSO message
  (the egress relay sends straight out of the TCP chunk it decoded; the probe sender out of
  its burst buffer).

The message headers and iovecs live in buffers built once; a call passes prebuilt pointers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import socket
import struct
from array import array
from collections.abc import Callable, Iterator
from typing import Any

#: struct iovec {void *iov_base; size_t iov_len;}
_IOVEC = struct.Struct("@PN")
#: struct mmsghdr {struct msghdr msg_hdr; unsigned msg_len;} on LP64, padded to 64 bytes.
_MMSGHDR_SIZE = 64
#: msg_iov, msg_iovlen at offset 16
_IOV_FIELDS = struct.Struct("@PN")
_IOV_FIELDS_OFFSET = 16
BATCH = 256

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_sendmmsg = getattr(_libc, "sendmmsg", None)
_recvmmsg = getattr(_libc, "recvmmsg", None)
# No argtypes: the calls pass prebuilt c_void_p/c_int objects, which skips per-call conversion
# (about a third of the cost of a ctypes call).
if _sendmmsg is not None and _recvmmsg is not None:
    _sendmmsg.restype = ctypes.c_int
    _recvmmsg.restype = ctypes.c_int

AVAILABLE = _sendmmsg is not None and _recvmmsg is not None and ctypes.sizeof(ctypes.c_void_p) == 8
#: msg_hdr.msg_flags (offset 48) and msg_len (offset 56) of each struct mmsghdr, as recvmmsg left them
_RESULT = struct.Struct("@48xi4xI4x")
#: The same with msg_hdr.msg_controllen (offset 40) in front
_RESULT_WITH_CONTROL = struct.Struct("@40xNi4xI4x")
#: msg_control and msg_controllen of a struct mmsghdr
_CONTROL_FIELDS = struct.Struct("@PN")
_CONTROL_FIELDS_OFFSET = 32
#: Room for one control message carrying an int: CMSG_SPACE(sizeof(int)), as 32-bit words
_GRO_CONTROL_WORDS = 6
UDP_GRO = 104  # linux/udp.h: receive runs of equal-size datagrams as one message
# Plain ints: the socket module's are enum flags, whose ``&`` costs a microsecond per datagram.
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0x20))
_MSG_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0x40))
#: recvmmsg: block for the first datagram only (up to SO_RCVTIMEO), then take what is waiting
_MSG_WAITFORONE = 0x10000
#: struct msghdr up to msg_flags: name, namelen, iov, iovlen, control, controllen
_MESSAGE = struct.Struct("@PI4xPNPN")
#: A control message carrying the UDP GSO segment size: struct cmsghdr + u16, CMSG_SPACE(2) bytes.
_SEGMENT_CONTROL = struct.Struct("@NiiH6x")
_SEGMENT_CMSG_LEN = 18  # CMSG_LEN(sizeof(u16))
_SEGMENT_SIZE = struct.Struct("@H")
_SEGMENT_SIZE_AT = 16
SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h
#: Segments in one GSO message (UDP_MAX_SEGMENTS; newer kernels allow more)
MAX_SEGMENTS = 64
#: Bytes in one GSO message: what one IPv4 UDP datagram can carry before it is cut
MAX_GSO_BYTES = 65_507
#: How the kernel refuses a run whose segments are over the route's MTU...
_RUN_TOO_BIG = errno.EMSGSIZE
#: ...and a run of any size (no checksum offload on the device, IPsec, UDP checksums off)
_RUNS_REFUSED = frozenset({errno.EINVAL, errno.EIO})

log = logging.getLogger("mcastkit.net")


def run_datagrams(length: int, segment: int) -> int:
    """Datagrams in ``length`` bytes cut into ``segment``-byte datagrams (the last may be shorter)."""
    return -(-length // segment)


def _require() -> None:
    if not AVAILABLE:
        raise OSError(errno.ENOSYS, "sendmmsg/recvmmsg are not available on this platform (Linux, 64-bit)")


def buffer_address(data: bytes) -> int:
    """Address of the bytes' own storage (no copy); valid while ``data`` is referenced."""
    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    assert address is not None
    return address


class Destination:
    """A sockaddr_in kept in memory that the batch can point at."""

    __slots__ = ("_storage", "address", "port", "sockaddr")

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        raw = (
            struct.pack("@H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(address) + bytes(8)
        )
        self._storage = (ctypes.c_char * len(raw)).from_buffer_copy(raw)
        self.sockaddr = ctypes.addressof(self._storage)


class BatchSender:
    """Queue (address, length, destination) triples; :meth:`flush` sends them with few system calls.

    Consecutive datagrams to one destination that are the same size (the last may be shorter)
    travel as one message with a UDP GSO segment size: the kernel takes the run through its
    stack once and cuts it into datagrams just before the device (or the device does), so
    only the device's work is done per datagram.
    The runs themselves go out with one ``sendmmsg``, in order. Where the kernel refuses a
    run, its datagrams go one by one, and so do later ones: all of them when the refusal
    does not depend on size (a kernel older than 4.18, a device without checksum offload),
    those of that size or larger when the segments were over the route's MTU.

    The caller keeps the memory the addresses point at alive until ``flush`` returns.
    """

    def __init__(self, sock: socket.socket, on_error: Callable[[int, Any, int], None]) -> None:
        _require()
        self._fd = sock.fileno()
        # A caller flushes once ``count`` reaches BATCH; the last add_run may go past it.
        room = BATCH + MAX_SEGMENTS
        self._headers = (ctypes.c_char * (_MMSGHDR_SIZE * room))()
        self._iovecs = (ctypes.c_char * (_IOVEC.size * room))()
        self._controls = (ctypes.c_char * (_SEGMENT_CONTROL.size * room))()
        self._headers_at = ctypes.addressof(self._headers)
        self._iovecs_at = ctypes.addressof(self._iovecs)
        #: the iovecs as 64-bit words: base, length, base, length...
        self._iovec_words = memoryview(self._iovecs).cast("B").cast("Q")
        self._controls_at = ctypes.addressof(self._controls)
        for index in range(room):
            _SEGMENT_CONTROL.pack_into(
                self._controls, index * _SEGMENT_CONTROL.size, _SEGMENT_CMSG_LEN, SOL_UDP, UDP_SEGMENT, 0
            )
        self._on_error = on_error
        #: whatever the caller wants back for a datagram that failed
        self.tags: list[Any] = []
        #: [first datagram, datagrams, segment size, destination, datagrams it may hold] per message
        self._messages: list[list[Any]] = []
        #: runs are formed only of datagrams shorter than this (lowered when the kernel refuses one)
        self.segment_limit = MAX_GSO_BYTES
        self.count = 0
        try:
            # A kernel without UDP GSO (before 4.18) would ignore the segment size and send a
            # run as one long datagram; it refuses the option instead, so ask first.
            sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
        except OSError as err:
            self._limit_runs(0, f"UDP GSO is not available ({err.strerror})")

    @property
    def messages(self) -> int:
        """Messages the next :meth:`flush` hands the kernel (a run of equal-size datagrams is one)."""
        return len(self._messages)

    def add(self, address: int, length: int, destination: Destination, tag: Any) -> None:
        """Queue ``length`` bytes at ``address`` for ``destination``; ``tag`` goes to ``on_error``."""
        index = self.count
        _IOVEC.pack_into(self._iovecs, index * _IOVEC.size, address, length)
        self.tags.append(tag)
        self.count = index + 1
        messages = self._messages
        if messages:
            run = messages[-1]
            # run: [first, count, size, destination, room]; a shorter datagram ends a run (room 0).
            # An empty one cannot: cut by segment size, the run would have no segment left for it.
            if run[3] is destination and run[1] < run[4] and 0 < length <= run[2]:
                run[1] += 1
                if length < run[2]:
                    run[4] = 0
                return
        messages.append([index, 1, length, destination, self._room(length)])

    def _room(self, size: int) -> int:
        """How many datagrams of ``size`` bytes one message may hold (1: no run)."""
        return min(MAX_SEGMENTS, MAX_GSO_BYTES // size) if 0 < size < self.segment_limit else 1

    def add_run(self, address: int, segment: int, length: int, destination: Destination, tag: Any) -> int:
        """Queue the datagrams of ``segment`` bytes (the last may be shorter) that fill ``length``
        bytes at ``address``, at most :data:`MAX_SEGMENTS`; returns how many there are."""
        if not (segment > 0 and 0 < length <= segment * MAX_SEGMENTS):
            raise ValueError(f"a run of {length} bytes in {segment}-byte datagrams")
        count = run_datagrams(length, segment)
        if count == 1 or segment >= self.segment_limit:
            stop = address + length
            for at in range(address, stop, segment):
                self.add(at, min(segment, stop - at), destination, tag)
            return count
        index = self.count
        last = length - (count - 1) * segment
        words = self._iovec_words
        words[2 * index : 2 * (index + count) : 2] = array("Q", range(address, address + length, segment))
        words[2 * index + 1 : 2 * (index + count) : 2] = array("Q", (segment,)) * count
        words[2 * (index + count) - 1] = last
        self.tags += [tag] * count
        self.count = index + count
        messages = self._messages
        done = 0
        if messages:
            run = messages[-1]  # [first, count, size, destination, room], as in add
            if run[3] is destination and run[2] == segment and run[1] < run[4]:
                done = min(count, run[4] - run[1])
                run[1] += done
        room = self._room(segment)
        while done < count:
            take = min(room, count - done)
            messages.append([index + done, take, segment, destination, room])
            done += take
        if last < segment:
            messages[-1][4] = 0  # a shorter datagram ends its run
        return count

    def flush(self) -> int:
        """Send everything queued; a datagram the kernel refuses goes to ``on_error`` and is skipped.

        Returns how many datagrams the kernel took.
        """
        messages = self._messages
        self._pack(0)
        sent = done = 0
        assert _sendmmsg is not None
        while done < len(messages):
            taken = _sendmmsg(
                self._fd, ctypes.c_void_p(self._headers_at + done * _MMSGHDR_SIZE), len(messages) - done, 0
            )
            if taken > 0:
                for message in messages[done : done + taken]:
                    sent += message[1]
                done += taken
                continue
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            first, count, size, _destination, _room = messages[done]
            if count > 1 and (code == _RUN_TOO_BIG or code in _RUNS_REFUSED):
                # Not this run's datagrams but their coalescing: send it, and the like, one by one.
                self._limit_runs(
                    size if code == _RUN_TOO_BIG else 0, f"a run was refused ({os.strerror(code)})"
                )
                self._split_runs(done)
                continue
            for index in range(first, first + count):
                self._on_error(
                    code, self.tags[index], _IOVEC.unpack_from(self._iovecs, index * _IOVEC.size)[1]
                )
            done += 1
        self.count = 0
        self.tags.clear()
        messages.clear()
        return sent

    def _limit_runs(self, limit: int, why: str) -> None:
        """Form runs only of datagrams shorter than ``limit`` from now on (0: no runs)."""
        if limit >= self.segment_limit:
            return
        first_time = self.segment_limit == MAX_GSO_BYTES
        self.segment_limit = limit
        scope = f"datagrams of {limit} bytes or more" if limit else "all datagrams"
        (log.warning if first_time else log.debug)("%s: sending %s one by one", why, scope)

    def _split_runs(self, start: int) -> None:
        """Turn the queued runs from message ``start`` on that are over the limit into single datagrams."""
        messages, split = self._messages[:start], False
        for message in self._messages[start:]:
            first, count, size, destination, _room = message
            if count > 1 and size >= self.segment_limit:
                lengths = [
                    _IOVEC.unpack_from(self._iovecs, i * _IOVEC.size)[1] for i in range(first, first + count)
                ]
                messages += [[first + i, 1, lengths[i], destination, 1] for i in range(count)]
                split = True
            else:
                messages.append(message)
        self._messages[:] = messages
        if split:
            self._pack(start)

    def _pack(self, start: int) -> None:
        """Write the message headers (and segment sizes) from message ``start`` on."""
        headers, controls = self._headers, self._controls
        iovecs_at, controls_at = self._iovecs_at, self._controls_at
        for number in range(start, len(self._messages)):
            first, count, size, destination, _room = self._messages[number]
            if count > 1:
                control = number * _SEGMENT_CONTROL.size
                _SEGMENT_SIZE.pack_into(controls, control + _SEGMENT_SIZE_AT, size)
                control_at, control_length = controls_at + control, _SEGMENT_CONTROL.size
            else:
                control_at = control_length = 0
            _MESSAGE.pack_into(
                headers,
                number * _MMSGHDR_SIZE,
                destination.sockaddr,
                16,
                iovecs_at + first * _IOVEC.size,
                count,
                control_at,
                control_length,
            )


class DatagramSlots:
    """``slots`` datagram buffers in one :attr:`buffer`, received into with one call each.

    Slot ``i`` starts at ``i * stride``; its datagram at ``i * stride + headroom``, leaving
    ``headroom`` bytes in front of it for the caller (the ingress writes its frame header there).
    A received datagram longer than ``capacity`` is cut and reported as truncated.

    With ``coalesce`` the socket asks for UDP GRO: where the receiving device coalesces a
    burst of equal-size datagrams of one flow (GRO, on by default on physical NICs), the
    slot holds the whole run back to back, and :meth:`receive` reports the segment size
    (each datagram's; the last may be shorter). Give such slots room for 65,535 bytes.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        capacity: int,
        headroom: int = 0,
        slots: int = BATCH,
        coalesce: bool = False,
    ) -> None:
        _require()
        self._fd = sock.fileno()
        self.slots = slots
        self.capacity = capacity
        self.headroom = headroom
        self.stride = (headroom + capacity + 15) // 16 * 16
        self.buffer = bytearray(self.stride * slots)
        self.view = memoryview(self.buffer)
        self._storage = (ctypes.c_char * len(self.buffer)).from_buffer(self.buffer)
        self._headers = (ctypes.c_char * (_MMSGHDR_SIZE * slots))()
        self._iovecs = (ctypes.c_char * (_IOVEC.size * slots))()
        self._headers_ptr = ctypes.c_void_p(ctypes.addressof(self._headers))
        iovecs_at = ctypes.addressof(self._iovecs)
        for index in range(slots):
            _IOV_FIELDS.pack_into(
                self._headers, index * _MMSGHDR_SIZE + _IOV_FIELDS_OFFSET, iovecs_at + index * _IOVEC.size, 1
            )
        self._length = -1
        self._set_lengths(capacity)
        self._results = memoryview(self._headers).cast("B")
        self._controls: Any = None
        if coalesce:
            self._ask_for_runs(sock)

    def _ask_for_runs(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError as err:  # before Linux 5.0: every datagram arrives on its own, which is fine
            log.debug("UDP GRO is not available (%s): datagrams are received one by one", err.strerror)
            return
        words = _GRO_CONTROL_WORDS
        self._controls = (ctypes.c_int32 * (words * self.slots))()
        controls_at = ctypes.addressof(self._controls)
        for index in range(self.slots):
            _CONTROL_FIELDS.pack_into(
                self._headers,
                index * _MMSGHDR_SIZE + _CONTROL_FIELDS_OFFSET,
                controls_at + index * words * 4,
                words * 4,
            )
        # recvmmsg overwrites each msg_controllen with what it stored: restored before each call
        self._pristine = bytes(self._headers)

    def _set_lengths(self, length: int) -> None:
        """Point every iovec at its slot's datagram, ``length`` bytes long."""
        if length == self._length:
            return
        buffer_at = ctypes.addressof(self._storage)
        for index in range(self.slots):
            _IOVEC.pack_into(
                self._iovecs, index * _IOVEC.size, buffer_at + index * self.stride + self.headroom, length
            )
        self._length = length

    def runs(self, received: list[tuple[int, bool, int]]) -> Iterator[tuple[int, int, int]]:
        """(offset in :attr:`buffer`, size, count): ``count`` datagrams of ``size`` bytes back to
        back, for every datagram just received (a run's shorter last one on its own)."""
        stride, headroom = self.stride, self.headroom
        for index, (length, _truncated, segment) in enumerate(received):
            start = index * stride + headroom
            if segment and length > segment:
                whole, rest = divmod(length, segment)
                yield start, segment, whole
                if rest:
                    yield start + whole * segment, rest, 1
            else:
                yield start, length, 1

    def receive(self, *, wait: bool = False) -> list[tuple[int, bool, int]]:
        """(length, truncated, segment) for each message read now; empty when none is waiting.

        ``segment`` is 0 for a single datagram, else the size of each datagram of the run the
        slot holds (``coalesce``). With ``wait`` (a blocking socket) it waits for the first
        datagram up to the socket's receive timeout (:func:`mcastkit.net.sockets.set_receive_timeout`).
        """
        assert _recvmmsg is not None
        self._set_lengths(self.capacity)
        controls = self._controls
        if controls is not None:
            ctypes.memmove(self._headers, self._pristine, len(self._pristine))
        mode = _MSG_WAITFORONE if wait else _MSG_DONTWAIT
        count = _recvmmsg(self._fd, self._headers_ptr, self.slots, mode, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        results = self._results[: count * _MMSGHDR_SIZE]
        if controls is None:
            return [(length, bool(flags & _MSG_TRUNC), 0) for flags, length in _RESULT.iter_unpack(results)]
        words = _GRO_CONTROL_WORDS
        # The only control message this socket asks for: struct cmsghdr {len; level; type}, int.
        return [
            (
                length,
                bool(flags & _MSG_TRUNC),
                controls[index * words + 4]
                if control_length
                and controls[index * words + 3] == UDP_GRO
                and controls[index * words + 2] == SOL_UDP
                else 0,
            )
            for index, (control_length, flags, length) in enumerate(_RESULT_WITH_CONTROL.iter_unpack(results))
        ]
