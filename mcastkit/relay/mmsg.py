"""sendmmsg(2) and recvmmsg(2) through ctypes: one system call for a batch of datagrams (Linux).

A ``sendto``/``recv`` per datagram costs a system call each; at a hundred thousand datagrams
a second and more, the calls, not the copying, are what the relay spends its time on.
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
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0x20)
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0x40)


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

    def __init__(self, sock: socket.socket, on_error: Callable[[int, Any], None]) -> None:
        if not AVAILABLE:
            raise OSError(errno.ENOSYS, "sendmmsg is not available on this platform")
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
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == BATCH

    def add(self, address: int, length: int, destination: Destination, tag: Any) -> None:
        index = self.count
        _IOVEC.pack_into(self._iovecs, index * _IOVEC.size, address, length)
        _NAME.pack_into(self._headers, index * _MMSGHDR_SIZE, destination.sockaddr, 16)
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
            self._on_error(code, self.tags[start])
            start += 1
        self.count = 0
        self.tags.clear()


class BatchReceiver:
    """Reads up to :data:`BATCH` datagrams per system call from a non-blocking socket.

    Datagram ``i`` lands at ``i * stride + headroom`` of :attr:`buffer`, leaving ``headroom``
    bytes in front of it for the caller (the relay writes its frame header there). Datagrams
    longer than ``capacity`` are cut and reported as truncated.
    """

    def __init__(self, sock: socket.socket, *, capacity: int, headroom: int) -> None:
        if not AVAILABLE:
            raise OSError(errno.ENOSYS, "recvmmsg is not available on this platform")
        self._fd = sock.fileno()
        self.stride = (headroom + capacity + 15) // 16 * 16
        self.buffer = bytearray(self.stride * BATCH)
        self._storage = (ctypes.c_char * len(self.buffer)).from_buffer(self.buffer)
        self._headers = (ctypes.c_char * (_MMSGHDR_SIZE * BATCH))()
        self._iovecs = (ctypes.c_char * (_IOVEC.size * BATCH))()
        self._headers_ptr = ctypes.c_void_p(ctypes.addressof(self._headers))
        buffer_at = ctypes.addressof(self._storage)
        iovecs_at = ctypes.addressof(self._iovecs)
        for index in range(BATCH):
            _IOVEC.pack_into(
                self._iovecs, index * _IOVEC.size, buffer_at + index * self.stride + headroom, capacity
            )
            _IOV_FIELDS.pack_into(
                self._headers, index * _MMSGHDR_SIZE + _IOV_FIELDS_OFFSET, iovecs_at + index * _IOVEC.size, 1
            )
        self._results = memoryview(self._headers).cast("B")

    def receive(self) -> list[tuple[int, bool]]:
        """(length, truncated) for each datagram read now; empty when none is waiting."""
        assert _recvmmsg is not None
        count = _recvmmsg(self._fd, self._headers_ptr, BATCH, _MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        return [
            (length, bool(flags & _MSG_TRUNC))
            for flags, length in _RESULT.iter_unpack(self._results[: count * _MMSGHDR_SIZE])
        ]
