"""sendmmsg(2) and recvmmsg(2) through ctypes: one system call for a batch of datagrams (Linux).

A ``sendto``/``recv`` per datagram costs a system call each; at a hundred thousand datagrams
a second and more, the calls, not the copying, are what the relay and the probe spend their
time on.

- :class:`DatagramSlots`: a buffer cut into fixed slots, received into with ``recvmmsg`` (the
  ingress relay, the probe receiver) or sent from with ``sendmmsg`` on a connected socket (the
  probe sender);
- :class:`BatchSender`: datagrams anywhere in memory, each to its own destination (the egress
  relay sends straight out of the TCP chunk it decoded).

The message headers and iovecs are built once; a call passes prebuilt pointers only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

#: struct iovec {void *iov_base; size_t iov_len;}
_IOVEC = struct.Struct("@PN")
#: struct mmsghdr {struct msghdr msg_hdr; unsigned msg_len;} on LP64, padded to 64 bytes.
_MMSGHDR_SIZE = 64
#: msg_name, msg_namelen (the first two fields of struct msghdr)
_NAME = struct.Struct("@PI")
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
# Plain ints: the socket module's are enum flags, whose ``&`` costs a microsecond per datagram.
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0x20))
_MSG_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0x40))
#: recvmmsg: block for the first datagram only (up to SO_RCVTIMEO), then take what is waiting
_MSG_WAITFORONE = 0x10000
#: sendmmsg errors that mean "no room right now", not a broken socket
_BACKPRESSURE = frozenset({errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED})


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

    The caller keeps the memory the addresses point at alive until ``flush`` returns.
    """

    def __init__(self, sock: socket.socket, on_error: Callable[[int, Any, int], None]) -> None:
        _require()
        self._fd = sock.fileno()
        self._headers = (ctypes.c_char * (_MMSGHDR_SIZE * BATCH))()
        self._iovecs = (ctypes.c_char * (_IOVEC.size * BATCH))()
        self._headers_at = ctypes.addressof(self._headers)
        self._headers_ptr = ctypes.c_void_p(self._headers_at)
        iovecs_at = ctypes.addressof(self._iovecs)
        for index in range(BATCH):
            _IOV_FIELDS.pack_into(
                self._headers, index * _MMSGHDR_SIZE + _IOV_FIELDS_OFFSET, iovecs_at + index * _IOVEC.size, 1
            )
        self._on_error = on_error
        #: whatever the caller wants back for a datagram that failed
        self.tags: list[Any] = []
        #: the destination each header already names (most batches go to one group: skip rewriting it)
        self._names: list[Destination | None] = [None] * BATCH
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == BATCH

    def add(self, address: int, length: int, destination: Destination, tag: Any) -> None:
        """Queue ``length`` bytes at ``address`` for ``destination``; ``tag`` goes to ``on_error``."""
        index = self.count
        _IOVEC.pack_into(self._iovecs, index * _IOVEC.size, address, length)
        if self._names[index] is not destination:
            _NAME.pack_into(self._headers, index * _MMSGHDR_SIZE, destination.sockaddr, 16)
            self._names[index] = destination
        self.tags.append(tag)
        self.count = index + 1

    def flush(self) -> None:
        """Send everything queued; a datagram the kernel refuses goes to ``on_error`` and is skipped."""
        start, count = 0, self.count
        assert _sendmmsg is not None
        while start < count:
            headers = (
                self._headers_ptr if start == 0 else ctypes.c_void_p(self._headers_at + start * _MMSGHDR_SIZE)
            )
            sent = _sendmmsg(self._fd, headers, count - start, 0)
            if sent > 0:
                start += sent
                continue
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            length = _IOVEC.unpack_from(self._iovecs, start * _IOVEC.size)[1]
            self._on_error(code, self.tags[start], length)
            start += 1
        self.count = 0
        self.tags.clear()


class DatagramSlots:
    """``slots`` datagram buffers in one :attr:`buffer`, received into or sent from with one call each.

    Slot ``i`` starts at ``i * stride``; its datagram at ``i * stride + headroom``, leaving
    ``headroom`` bytes in front of it for the caller (the ingress writes its frame header there).
    A received datagram longer than ``capacity`` is cut and reported as truncated.
    """

    def __init__(self, sock: socket.socket, *, capacity: int, headroom: int = 0, slots: int = BATCH) -> None:
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

    def receive(self, *, wait: bool = False) -> list[tuple[int, bool]]:
        """(length, truncated) for each datagram read now; empty when none is waiting.

        With ``wait`` (a blocking socket) it waits for the first datagram up to the socket's
        receive timeout (:func:`mcastkit.net.sockets.set_receive_timeout`).
        """
        assert _recvmmsg is not None
        self._set_lengths(self.capacity)
        mode = _MSG_WAITFORONE if wait else _MSG_DONTWAIT
        count = _recvmmsg(self._fd, self._headers_ptr, self.slots, mode, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        return [
            (length, bool(flags & _MSG_TRUNC))
            for flags, length in _RESULT.iter_unpack(self._results[: count * _MMSGHDR_SIZE])
        ]

    def send(self, count: int, length: int) -> int:
        """Send the first ``count`` slots, ``length`` bytes each, on a connected socket.

        Returns how many the kernel took: 0 instead of raising when it has no room right now.
        """
        assert _sendmmsg is not None
        self._set_lengths(length)
        sent = _sendmmsg(self._fd, self._headers_ptr, count, 0)
        if sent < 0:
            code = ctypes.get_errno()
            if code in _BACKPRESSURE or code == errno.EINTR:
                return 0
            raise OSError(code, os.strerror(code))
        return int(sent)
